/**
 * Trusting a private CA for relays served over TLS (`wss://`, `https://`), in Node: the CA file of
 * `AGENTMESH_CA_FILE` (read by `connect()` and the CLI) or `connect({ caFile })`. The CA is added
 * to Node's own roots, not put in their place, and is used for AgentMesh's own requests only (its
 * WebSockets and REST calls), not the rest of the process. A relay whose certificate no trusted CA
 * signed is refused by the TLS handshake (AM_ERR_CONNECT_FAILED, with the reason).
 */
import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { Agent } from 'undici'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { setRelayDispatcher } from './api.ts'

let trusted: { file: string, ca: string[] } | undefined

/** Reads the PEM file (one or more certificates) and trusts it for every relay connection from now on. */
export function trustRelayCa (file: string): void {
  if (trusted?.file === file) return
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new AgentMeshError(ErrorCode.InvalidArgument, `the CA file ${file} (AGENTMESH_CA_FILE) ${code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : (err as Error).message}`, { cause: err })
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `the CA file ${file} (AGENTMESH_CA_FILE) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  for (const b of blocks) {
    try { new X509Certificate(b) } catch (err) { // eslint-disable-line no-new
      throw new AgentMeshError(ErrorCode.InvalidArgument, `the CA file ${file} (AGENTMESH_CA_FILE) holds a certificate that does not parse`, { cause: err })
    }
  }
  const ca = [...rootCertificates, ...blocks]
  trusted = { file, ca }
  setRelayDispatcher(new Agent({ connect: { ca } }))
}

/** Trusts `AGENTMESH_CA_FILE` when it is set (a no-op otherwise). */
export function trustRelayCaFromEnv (env: Readonly<Record<string, string | undefined>> = process.env): void {
  const f = env.AGENTMESH_CA_FILE
  if (f !== undefined && f !== '') trustRelayCa(f)
}

/** The roots a relay's certificate is checked against: undefined for Node's own. */
export function relayCa (): string[] | undefined { return trusted?.ca }
