/**
 * The certificate chain on disk. A CA directory holds ca.pem, ca.key (0600) and crl.pem:
 * `saveCa` writes one (refusing to overwrite a CA key), `loadCa` reads one back and checks that the
 * key belongs to the certificate; `writePublicFile` writes a certificate or CRL 0644. Errors are
 * AgentMeshErrors that name the file.
 */
import type { X509Certificate } from '@peculiar/x509'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { chmodSync, lstatSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { writeSecretFile } from './identity.ts'
import { CertificateError, type CertificateAuthority } from './cert-types.ts'
import { caFromParts, invalidArg, parseCert } from './cert-x509.ts'

export const CA_FILES = { cert: 'ca.pem', key: 'ca.key', crl: 'crl.pem' } as const

function readError (what: string, path: string, cause: unknown): AgentMeshError {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new AgentMeshError(ErrorCode.InvalidArgument, `${what}: ${path} does not exist`, { cause })
  return new AgentMeshError(ErrorCode.DataDir, `${what}: cannot read ${path}: ${code ?? String(cause)}`, { cause })
}

function writeError (path: string, cause: unknown): AgentMeshError {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new AgentMeshError(ErrorCode.InvalidArgument, `cannot write ${path}: its directory does not exist`, { cause })
  return new AgentMeshError(ErrorCode.DataDir, `cannot write ${path}: ${code ?? String(cause)}`, { cause })
}

/** Writes a public file (certificate, CRL) atomically, mode 0644. */
export function writePublicFile (path: string, data: string): void {
  try {
    writeSecretFile(path, data)
    chmodSync(path, 0o644)
  } catch (cause) {
    throw writeError(path, cause)
  }
}

/**
 * Saves a CA to `dir` (created 0700): `ca.pem`, `ca.key` (PKCS#8, 0600) and `crlPem` as `crl.pem`.
 * Refuses a directory that already holds a CA key unless `force`: overwriting it loses the CA.
 */
export function saveCa (dir: string, ca: CertificateAuthority, opts: { crlPem?: string, force?: boolean } = {}): void {
  try { mkdirSync(dir, { recursive: true, mode: 0o700 }) } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataDir, `cannot create the CA directory ${dir}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  const keyPath = join(dir, CA_FILES.key)
  if (opts.force !== true) {
    let exists = true
    try { lstatSync(keyPath) } catch (cause) { if ((cause as NodeJS.ErrnoException).code === 'ENOENT') exists = false }
    if (exists) throw invalidArg(`${dir} already holds a CA (${CA_FILES.key}); refusing to overwrite its key`)
  }
  try { writeSecretFile(keyPath, ca.privateKeyPem) } catch (cause) { throw writeError(keyPath, cause) }
  writePublicFile(join(dir, CA_FILES.cert), ca.certPem)
  if (opts.crlPem !== undefined) writePublicFile(join(dir, CA_FILES.crl), opts.crlPem)
}

function readText (what: string, path: string): string {
  try { return readFileSync(path, 'utf8') } catch (cause) { throw readError(what, path, cause) }
}

/** Loads the CA in `dir`, checking that its key belongs to its certificate. */
export function loadCa (dir: string): CertificateAuthority {
  const certPath = join(dir, CA_FILES.cert)
  const keyPath = join(dir, CA_FILES.key)
  const certPem = readText(`no CA in ${dir}`, certPath)
  const privateKeyPem = readText(`no CA key in ${dir}`, keyPath)
  let cert: X509Certificate
  try { cert = parseCert(certPem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `${certPath} is not a certificate: ${(cause as Error).message}`, { cause })
  }
  let spki: Buffer
  try {
    spki = createPublicKey(createPrivateKey({ key: privateKeyPem, format: 'pem' })).export({ format: 'der', type: 'spki' })
  } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `${keyPath} is not a PKCS#8 private key`, { cause })
  }
  if (!spki.equals(Buffer.from(cert.publicKey.rawData))) {
    throw new CertificateError(ErrorCode.CertInvalid, `${keyPath} is not the key of ${certPath}`, { subject: cert.subject })
  }
  return caFromParts(cert, certPem, privateKeyPem)
}
