/** Audit: the hash-chained audit log, filterable by action and actor, with "verify chain". */
import { useEffect, useState } from 'preact/hooks'
import { api, type Session } from '../api.ts'
import { Empty, ErrorLine, html, text, time, who } from '../html.ts'
import { useLiveReload } from '../live.ts'

export function AuditTab (_: { session: Session }): any {
  const [rows, setRows] = useState<any[] | undefined>(undefined)
  const [action, setAction] = useState('')
  const [actor, setActor] = useState('')
  const [error, setError] = useState<unknown>(undefined)
  const [verify, setVerify] = useState<any>(undefined)
  const [verifying, setVerifying] = useState(false)
  const load = async (): Promise<void> => {
    const q = new URLSearchParams({ limit: '200' })
    // the newest rows: a large before
    q.set('before', String(Number.MAX_SAFE_INTEGER))
    if (action.trim() !== '') q.set('action', action.trim())
    if (actor.trim() !== '') q.set('actor', actor.trim())
    try { setRows(((await api<any>('api/v1/audit?' + q.toString())).entries ?? []).slice().reverse()); setError(undefined) } catch (err) { setError(err); setRows(r => r ?? []) }
  }
  useEffect(() => { void load() }, [])
  useLiveReload(e => e.type === 'audit', () => { void load() }, 1000)
  const runVerify = async (): Promise<void> => {
    setVerifying(true)
    try { setVerify(await api('api/v1/audit/verify')) } catch (err) { setVerify({ ok: false, error: err }) } finally { setVerifying(false) }
  }
  return html`<div class="page">
    <form class="toolbar" onSubmit=${(e: Event) => { e.preventDefault(); void load() }}>
      <label class="sr-only" for="audit-action">Action</label>
      <input id="audit-action" placeholder="action, e.g. room.join" value=${action} onInput=${(e: any) => { setAction(e.currentTarget.value) }} />
      <label class="sr-only" for="audit-actor">Actor</label>
      <input id="audit-actor" placeholder="actor: AMID, operator or relay" value=${actor} onInput=${(e: any) => { setActor(e.currentTarget.value) }} />
      <button type="submit">Filter</button>
      <span class="spacer"></span>
      <button type="button" class="primary" id="verify-chain" onClick=${runVerify} disabled=${verifying}>${verifying ? 'Verifying…' : 'Verify chain'}</button>
    </form>
    ${verify === undefined ? null : html`<p class=${verify.ok === true ? 'ok-line' : 'error'} role="status" id="verify-result">
      ${verify.ok === true ? `The chain verifies: ${verify.rows} rows${verify.last_seq === undefined ? '' : `, up to #${verify.last_seq}`}.` : `The chain does not verify${verify.seq === undefined ? '' : ` at row ${verify.seq}`}: ${verify.reason ?? verify.error?.message ?? 'unknown'}`}</p>`}
    <${ErrorLine} error=${error} />
    ${rows?.length === 0 ? html`<${Empty} title="No audit rows match" hint="Clear the filters, or wait for agents to act: joins, roles, tasks and updates are audited." />` : null}
    ${(rows ?? []).length > 0 ? html`<div class="table-wrap"><table class="table audit"><thead><tr><th>#</th><th>When</th><th>Actor</th><th>Action</th><th>Target</th><th>Detail</th></tr></thead>
      <tbody>${(rows ?? []).map(r => html`<tr><td>${r.seq}</td><td>${time(r.at)}</td><td title=${r.actor}>${who(r.actor)}</td><td><code>${r.action}</code></td><td>${text(r.target ?? '', 60)}</td><td class="detail">${text(r.detail, 300)}</td></tr>`)}</tbody></table></div>` : null}
  </div>`
}
