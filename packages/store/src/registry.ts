import type { AgentProfile, CrlRecord, ProfileQuery, PutCrlResult } from './types.ts'

/** The text a profile is searched by: display name, skill ids, names, descriptions and tags, lower-cased. */
export function searchText (p: AgentProfile): string {
  const parts = [p.displayName ?? '']
  for (const s of p.capabilities) parts.push(s.id, s.name, s.description ?? '', ...s.tags)
  return parts.join('\n').toLowerCase()
}

/** Whether `p` matches a query; the reference semantics every Store implements. */
export function profileMatches (p: AgentProfile, q: ProfileQuery): boolean {
  if (q.capability !== undefined) {
    const c = q.capability.toLowerCase()
    if (!p.capabilities.some(s => s.id.toLowerCase() === c || s.tags.some(t => t.toLowerCase() === c))) return false
  }
  if (q.text !== undefined && !searchText(p).includes(q.text.toLowerCase())) return false
  return true
}

/**
 * Whether `next` replaces `current` (the stored CRL of the same issuer); the reference semantics
 * of `Store.putCrl`: only a strictly later thisUpdate replaces, the same CRL again is `unchanged`.
 */
export function crlPutResult (current: CrlRecord | undefined, next: CrlRecord): PutCrlResult {
  if (current === undefined || current.thisUpdate < next.thisUpdate) return { status: 'stored' }
  if (current.thisUpdate === next.thisUpdate && current.pem === next.pem) return { status: 'unchanged' }
  return { status: 'outdated', current }
}

/** The order of `Store.listCrls`: by issuer name, then issuer key. */
export function compareCrls (a: CrlRecord, b: CrlRecord): number {
  if (a.issuer !== b.issuer) return a.issuer < b.issuer ? -1 : 1
  return a.issuerKey < b.issuerKey ? -1 : a.issuerKey > b.issuerKey ? 1 : 0
}
