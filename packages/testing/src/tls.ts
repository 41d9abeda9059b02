/**
 * Certificates for TLS tests, made with the machine's `openssl` (never a hand-written X.509
 * encoder): a CA, server certificates for 127.0.0.1/localhost signed by it, and client
 * certificates for mutual TLS. P-256 keys: fast to make.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCa {
  dir: string
  /** the CA's certificate (PEM file) */
  caFile: string
  caKeyFile: string
  /** a server certificate for 127.0.0.1 and localhost, and its key */
  issue (name: string, opts?: { client?: boolean, days?: number, cn?: string }): { certFile: string, keyFile: string }
}

const openssl = (args: string[], cwd: string): void => { execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] }) }

/** A new CA in a temporary directory (`name` makes its subject distinct from another test CA's). */
export function makeTestCa (name = 'AgentMesh Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-tls-'))
  const caFile = join(dir, 'ca.pem')
  const caKeyFile = join(dir, 'ca.key')
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-subj', `/CN=${name}`], dir)
  return {
    dir,
    caFile,
    caKeyFile,
    issue (certName, opts = {}) {
      const keyFile = join(dir, `${certName}.key`)
      const csr = join(dir, `${certName}.csr`)
      const certFile = join(dir, `${certName}.pem`)
      const ext = join(dir, `${certName}.ext`)
      writeFileSync(ext, opts.client === true
        ? 'extendedKeyUsage=clientAuth\n'
        : 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${opts.cn ?? certName}`], dir)
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKeyFile, '-CAcreateserial', '-out', certFile, '-days', String(opts.days ?? 2), '-extfile', ext], dir)
      return { certFile, keyFile }
    },
  }
}
