/**
 * TLS for the relay (`serve --tls-cert FILE --tls-key FILE`): the certificate chain and key are read
 * and checked before the relay listens (readable, PEM, in their validity period, the key matching
 * the certificate), then read again on SIGHUP and when either file changes. A reload swaps the
 * secure context for new connections only: open ones keep theirs. A reload that fails the checks
 * keeps the old pair and says why (logged; `reloadTls()` rejects).
 */
import { readFileSync, watchFile, unwatchFile } from 'node:fs'
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'

/** How often the certificate and key files are checked for a change, in ms. @default 2 s */
export const TLS_WATCH_INTERVAL_MS = 2000
/** HSTS on every HTTPS answer: a year, as browsers' preload lists ask. */
export const HSTS_HEADER = 'max-age=31536000'

export interface TlsPair {
  cert: Buffer
  key: Buffer
  /** the leaf certificate's subject and expiry, for the start line and logs */
  subject: string
  notAfter: Date
}

const bad = (message: string, cause?: unknown): AgentMeshError =>
  new AgentMeshError(ErrorCode.InvalidConfig, message, cause === undefined ? undefined : { cause })

function readPem (path: string, what: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : code === 'EISDIR' ? 'is a directory' : (err as Error).message
    throw bad(`the TLS ${what} file ${path} ${why}`, err)
  }
}

/** Reads and checks the pair: one line saying what is wrong when it is not usable now. */
export function loadTls (certPath: string, keyPath: string, now: number = Date.now()): TlsPair {
  const cert = readPem(certPath, 'certificate')
  const key = readPem(keyPath, 'key')
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(cert)
  } catch (err) {
    throw bad(`the TLS certificate file ${certPath} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`, err)
  }
  let priv: KeyObject
  try {
    priv = createPrivateKey(key)
  } catch (err) {
    throw bad(`the TLS key file ${keyPath} is not an unencrypted PEM private key`, err)
  }
  const notBefore = new Date(leaf.validFrom)
  const notAfter = new Date(leaf.validTo)
  if (now < notBefore.getTime()) throw bad(`the TLS certificate ${certPath} is not valid before ${notBefore.toISOString()}`)
  if (now > notAfter.getTime()) throw bad(`the TLS certificate ${certPath} expired on ${notAfter.toISOString()}; renew it`)
  if (!leaf.checkPrivateKey(priv)) throw bad(`the TLS key ${keyPath} does not match the certificate ${certPath}`)
  return { cert, key, subject: leaf.subject.replace(/\n/g, ', '), notAfter }
}

/** Calls `onChange` when either file changes (polled: survives an editor's or certbot's rename). Answers the function that stops. */
export function watchTls (paths: readonly string[], onChange: () => void, intervalMs = TLS_WATCH_INTERVAL_MS): () => void {
  const listener = (cur: { mtimeMs: number }, prev: { mtimeMs: number }): void => { if (cur.mtimeMs !== prev.mtimeMs) onChange() }
  for (const p of paths) watchFile(p, { interval: intervalMs, persistent: false }, listener)
  return () => { for (const p of paths) unwatchFile(p, listener) }
}

/** Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  return isIP(h) === 4 && h.startsWith('127.')
}

/** TLS settings of a client connection the relay makes (NATS, PostgreSQL), as PEM text. */
export interface ClientTls {
  /** the CA the server's certificate must chain to (instead of Node's roots, as the drivers take it) */
  ca?: string
  /** the relay's client certificate and key, for mutual TLS */
  cert?: string
  key?: string
}

/**
 * Reads the CA, client certificate and key files of a connection to `what` ("the NATS backplane",
 * "the PostgreSQL store"); one line naming the file when one cannot be used. Answers undefined when
 * no file is given (a plain connection, or TLS from the URL).
 */
export function readClientTls (what: string, files: { ca?: string, cert?: string, key?: string }): ClientTls | undefined {
  if (files.ca === undefined && files.cert === undefined && files.key === undefined) return undefined
  if ((files.cert === undefined) !== (files.key === undefined)) throw bad(`${what}: a client certificate needs its key and a key its certificate (give both, or neither)`)
  const out: ClientTls = {}
  if (files.ca !== undefined) {
    const ca = readPem(files.ca, `CA (${what})`).toString('utf8')
    try { new X509Certificate(ca) } catch (err) { throw bad(`the TLS CA file ${files.ca} (${what}) is not a PEM certificate`, err) } // eslint-disable-line no-new
    out.ca = ca
  }
  if (files.cert !== undefined && files.key !== undefined) {
    const pair = loadTls(files.cert, files.key)
    out.cert = pair.cert.toString('utf8')
    out.key = pair.key.toString('utf8')
  }
  return out
}
