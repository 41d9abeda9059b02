/**
 * ICE servers (STUN/TURN) of the WebRTC transport, from configuration only (docs/protocol.md §30.4):
 * `AGENTMESH_ICE_SERVERS` (a JSON array of RTCIceServer), or `AGENTMESH_TURN_URL` with
 * `AGENTMESH_TURN_USERNAME` and `AGENTMESH_TURN_CREDENTIAL` — or the credential read from a file
 * only its owner can read (`AGENTMESH_TURN_CREDENTIAL_FILE`). A credential never shows when a server
 * is logged, inspected, stringified or serialised: only the WebRTC stack reads it.
 */
import { readFileSync, statSync } from 'node:fs'
import { inspect } from 'node:util'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'

/** ICE servers one configuration may list. */
export const MAX_ICE_SERVERS = 8
/** URLs one ICE server may list. */
export const MAX_ICE_URLS = 8
/** The largest credential file read, bytes. */
export const MAX_CREDENTIAL_FILE_BYTES = 4096

const REDACTED = '[redacted]'
const bad = (why: string): AgentMeshError => new AgentMeshError(ErrorCode.InvalidConfig, `ICE servers: ${why}`)

/** An ICE server as WebRTC's RTCIceServer gives it. */
export interface IceServerInit {
  readonly urls: string | readonly string[]
  readonly username?: string
  readonly credential?: string
}

/** One ICE server whose credential is kept out of logs (it is readable, not enumerable). */
export class IceServer implements IceServerInit {
  readonly urls: string[]
  readonly username?: string
  readonly #credential: string | undefined
  constructor (init: { urls: string[], username?: string, credential?: string }) {
    this.urls = [...init.urls]
    if (init.username !== undefined) this.username = init.username
    this.#credential = init.credential
  }

  get credential (): string | undefined { return this.#credential }
  toJSON (): { urls: string[], username?: string, credential?: string } {
    return { urls: this.urls, ...(this.username === undefined ? {} : { username: this.username }), ...(this.#credential === undefined ? {} : { credential: REDACTED }) }
  }

  toString (): string { return `IceServer ${JSON.stringify(this.toJSON())}` }
  [inspect.custom] (): string { return this.toString() }
}

export interface IceEnvOptions {
  /** reads a credential file (tests) @default node:fs */
  readonly readFile?: (path: string) => string
  /** its mode bits (tests) @default node:fs statSync */
  readonly modeOf?: (path: string) => number
}

/**
 * The ICE servers the environment configures, or undefined when it configures none (then the
 * node uses host candidates only and contacts no STUN server). Throws AM_ERR_INVALID_CONFIG on a
 * malformed value and AM_ERR_INSECURE_FILE on a credential file its group or others can read.
 */
export function iceServersFromEnv (env: Readonly<Record<string, string | undefined>> = process.env, opts: IceEnvOptions = {}): IceServer[] | undefined {
  const json = env.AGENTMESH_ICE_SERVERS
  const turnUrl = env.AGENTMESH_TURN_URL
  if (json !== undefined && json.trim() !== '') {
    if (turnUrl !== undefined) throw bad('set AGENTMESH_ICE_SERVERS or AGENTMESH_TURN_URL, not both')
    let parsed: unknown
    try { parsed = JSON.parse(json) } catch { throw bad('AGENTMESH_ICE_SERVERS is not JSON: give an array like [{"urls":"stun:stun.example.org:3478"}]') }
    return parseIceServers(parsed, 'AGENTMESH_ICE_SERVERS')
  }
  if (turnUrl === undefined || turnUrl.trim() === '') return undefined
  const username = env.AGENTMESH_TURN_USERNAME
  const file = env.AGENTMESH_TURN_CREDENTIAL_FILE
  let credential = env.AGENTMESH_TURN_CREDENTIAL
  if (file !== undefined && file !== '') {
    if (credential !== undefined) throw bad('set AGENTMESH_TURN_CREDENTIAL or AGENTMESH_TURN_CREDENTIAL_FILE, not both')
    credential = readCredentialFile(file, opts)
  }
  return parseIceServers([{ urls: turnUrl, ...(username === undefined ? {} : { username }), ...(credential === undefined ? {} : { credential }) }], 'AGENTMESH_TURN_URL')
}

/** Checks a list of RTCIceServer (as JSON gives it) and answers it as IceServers. */
export function parseIceServers (v: unknown, where = 'iceServers'): IceServer[] {
  if (!Array.isArray(v)) throw bad(`${where} must be a JSON array of {urls, username?, credential?}`)
  if (v.length > MAX_ICE_SERVERS) throw bad(`${where} lists ${v.length} servers; at most ${MAX_ICE_SERVERS}`)
  return v.map((s: unknown, i) => {
    const at = `${where}[${i}]`
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw bad(`${at} must be an object {urls, username?, credential?}`)
    const o = s as Record<string, unknown>
    for (const k of Object.keys(o)) if (k !== 'urls' && k !== 'username' && k !== 'credential') throw bad(`${at}.${k} is not a field (urls, username, credential)`)
    const urls = typeof o.urls === 'string' ? [o.urls] : o.urls
    if (!Array.isArray(urls) || urls.length === 0 || urls.length > MAX_ICE_URLS || !urls.every(u => typeof u === 'string')) throw bad(`${at}.urls must be a URL or 1–${MAX_ICE_URLS} URLs`)
    for (const u of urls as string[]) {
      if (!/^(stun|stuns|turn|turns):[^\s@]{1,253}$/.test(u)) throw bad(`${at}.urls: "${u.slice(0, 80)}" is not a stun:, stuns:, turn: or turns: URL`)
    }
    for (const k of ['username', 'credential'] as const) {
      const x = o[k]
      // libdatachannel takes them inside the URL (turn:user:credential@host): ':' and '@' cannot be carried
      if (x !== undefined && (typeof x !== 'string' || x === '' || x.length > 512 || /[:@\s]/.test(x))) throw bad(`${at}.${k} must be 1–512 characters without ':', '@' or spaces`)
    }
    const turn = (urls as string[]).some(u => u.startsWith('turn'))
    if (turn && (o.username === undefined || o.credential === undefined)) throw bad(`${at}: a TURN server needs a username and a credential`)
    return new IceServer({ urls: urls as string[], ...(o.username === undefined ? {} : { username: o.username as string }), ...(o.credential === undefined ? {} : { credential: o.credential as string }) })
  })
}

function readCredentialFile (path: string, opts: IceEnvOptions): string {
  let mode: number
  try { mode = (opts.modeOf ?? ((p) => statSync(p).mode))(path) } catch {
    throw bad(`AGENTMESH_TURN_CREDENTIAL_FILE: cannot read ${path}`)
  }
  if ((mode & 0o077) !== 0) {
    throw new AgentMeshError(ErrorCode.InsecureFile, `${path} (AGENTMESH_TURN_CREDENTIAL_FILE) can be read by its group or others (mode ${(mode & 0o777).toString(8)}): chmod 600 ${path}`)
  }
  let text: string
  try { text = (opts.readFile ?? ((p) => readFileSync(p, 'utf8')))(path) } catch {
    throw bad(`AGENTMESH_TURN_CREDENTIAL_FILE: cannot read ${path}`)
  }
  if (text.length > MAX_CREDENTIAL_FILE_BYTES) throw bad(`AGENTMESH_TURN_CREDENTIAL_FILE: ${path} is larger than ${MAX_CREDENTIAL_FILE_BYTES} bytes`)
  return text.trim()
}
