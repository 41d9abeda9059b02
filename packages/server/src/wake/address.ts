/**
 * Where a wake webhook may point (docs/protocol.md §26): an absolute https:// URL (http:// too on a
 * relay that allows private addresses) whose host is, and resolves only to, public unicast
 * addresses. The check runs at registration and again at each notice, inside the connection's own
 * DNS lookup (`checkedLookup`), so the address checked is the address connected to: a name that
 * resolves to a public address at registration and to 127.0.0.1 later (DNS rebinding) is refused
 * then.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { AgentMeshError, ErrorCode, MAX_WEBHOOK_URL_LENGTH } from '@agentmesh/protocol'

/** Whether an address (v4, v6, v4-mapped v6) is public unicast: not private, loopback, link-local, CGNAT, multicast, reserved… */
export function isPublicAddress (address: string): boolean {
  let a: ReturnType<typeof ipaddr.process>
  try { a = ipaddr.process(address) } catch { return false }
  return a.range() === 'unicast'
}

function refused (host: string, address: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.WebhookAddressRefused,
    `the webhook host ${host} is ${address === host ? '' : `or resolves to ${address}, `}a private, loopback, link-local or otherwise non-public address; this relay sends wake notices to public addresses only (its operator may allow others with --webhook-allow-private)`)
}

/** The URL, parsed and checked for its form (no DNS); throws AM_ERR_WEBHOOK_URL_INVALID with what is wrong. */
export function parseWebhookUrl (text: string, allowPrivate: boolean): URL {
  const bad = (why: string): AgentMeshError => new AgentMeshError(ErrorCode.WebhookUrlInvalid, `the webhook URL ${why}`)
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_WEBHOOK_URL_LENGTH) throw bad(`must be 1 to ${MAX_WEBHOOK_URL_LENGTH} characters`)
  let u: URL
  try { u = new URL(text) } catch { throw bad('is not an absolute URL (https://host/path)') }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad(`must be https:// (not ${u.protocol.slice(0, 20)})`)
  if (u.protocol === 'http:' && !allowPrivate) throw bad('must be https:// (plain http:// only on a relay that allows private addresses)')
  if (u.username !== '' || u.password !== '') throw bad('must not hold a user name or password: put a secret in the path or query instead')
  if (u.hostname === '') throw bad('has no host')
  return u
}

/** The host without IPv6 brackets. */
function hostOf (u: URL): string {
  return u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
}

/** Resolves the URL's host and checks every address; throws AM_ERR_WEBHOOK_ADDRESS_REFUSED or AM_ERR_WEBHOOK_UNRESOLVABLE. */
export async function checkWebhookHost (u: URL, allowPrivate: boolean): Promise<void> {
  const host = hostOf(u)
  if (isIP(host) !== 0) {
    if (!allowPrivate && !isPublicAddress(host)) throw refused(host, host)
    return
  }
  const addrs = await new Promise<LookupAddress[]>((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, list) => { if (err !== null) reject(err); else resolve(list) })
  }).catch((err: NodeJS.ErrnoException) => {
    throw new AgentMeshError(ErrorCode.WebhookUnresolvable, `the webhook host ${host.slice(0, 253)} does not resolve (${err.code ?? 'lookup failed'}); check the URL, or try again`)
  })
  if (addrs.length === 0) throw new AgentMeshError(ErrorCode.WebhookUnresolvable, `the webhook host ${host.slice(0, 253)} resolves to no address`)
  if (allowPrivate) return
  for (const a of addrs) if (!isPublicAddress(a.address)) throw refused(host, a.address)
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A `lookup` for http(s).request that refuses non-public addresses (unless allowed): the addresses
 * the socket connects to are the ones checked here.
 */
export function checkedLookup (allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean, family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { all: true, ...(options.family === 4 || options.family === 6 ? { family: options.family } : {}) }, (err, list) => {
      if (err !== null) { callback(err, ''); return }
      const bad = allowPrivate ? undefined : list.find(a => !isPublicAddress(a.address))
      if (bad !== undefined || list.length === 0) {
        const e = (bad === undefined ? new AgentMeshError(ErrorCode.WebhookUnresolvable, `${hostname} resolves to no address`) : refused(hostname, bad.address)) as AgentMeshError & { code: string }
        callback(e as unknown as NodeJS.ErrnoException, '')
        return
      }
      if (options.all === true) callback(null, list)
      else callback(null, list[0]!.address, list[0]!.family)
    })
  }
}
