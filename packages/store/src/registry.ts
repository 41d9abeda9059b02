import type { AgentProfile, ProfileQuery } from './types.ts'

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
