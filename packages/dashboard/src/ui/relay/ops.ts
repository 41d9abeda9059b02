/** Ops: system updates with their adoption, catastrophe events with status and protocol steps, files. */
import { useEffect, useState } from 'preact/hooks'
import { api, type Session } from '../api.ts'
import { Badge, Empty, ErrorLine, bytes, html, text, time, who } from '../html.ts'
import { useLiveReload } from '../live.ts'

export function OpsTab (_: { session: Session }): any {
  const [updates, setUpdates] = useState<any[] | undefined>(undefined)
  const [adoption, setAdoption] = useState<Record<string, any>>({})
  const [events, setEvents] = useState<any[] | undefined>(undefined)
  const [protocols, setProtocols] = useState<any[]>([])
  const [files, setFiles] = useState<any[] | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const load = async (): Promise<void> => {
    try {
      const u = await api<any>('api/v1/updates')
      setUpdates(u.updates ?? [])
      const entries = await Promise.all((u.updates ?? []).slice(0, 20).map(async (x: any) => [x.updateId, await api(`api/v1/updates/${encodeURIComponent(x.updateId)}/acknowledgments`).catch(() => undefined)] as const))
      setAdoption(Object.fromEntries(entries))
    } catch (err) { setError(err); setUpdates(x => x ?? []) }
    try { setEvents((await api<any>('api/v1/catastrophe?limit=50')).events ?? []) } catch { setEvents(x => x ?? []) }
    try { setFiles((await api<any>('api/v1/files?limit=100')).files ?? []) } catch { setFiles(x => x ?? []) }
  }
  useEffect(() => {
    void load()
    void api<any>('api/v1/catastrophe/protocols').then(p => { setProtocols(p.protocols ?? []) }).catch(() => {})
  }, [])
  useLiveReload(e => (e.type === 'audit' && /^(update|catastrophe|file)\./.test(String(e.data.action))) || /^(catastrophe|file|system_update)/.test(e.type), () => { void load() }, 400)
  return html`<div class="page">
    <${ErrorLine} error=${error} />
    <section class="panel"><h2>System updates</h2>
      ${updates?.length === 0 ? html`<${Empty} title="No system updates" hint="Announce one with agentmesh update create --version X.Y.Z --title …; agents answer accepted, rejected or completed." />` : null}
      ${(updates ?? []).map(u => html`<${UpdateRow} key=${u.updateId} u=${u} a=${adoption[u.updateId]} />`)}
    </section>
    <section class="panel"><h2>Catastrophe events</h2>
      ${events?.length === 0 ? html`<${Empty} title="No catastrophe events" hint="The relay reports what it detects itself; agents and the operator report with agentmesh catastrophe report." />` : null}
      ${(events ?? []).map(e => html`<${EventRow} key=${e.eventId} e=${e} protocol=${protocols.find(p => p.id === e.recoveryProtocol)} />`)}
    </section>
    <section class="panel"><h2>Files</h2>
      ${files?.length === 0 ? html`<${Empty} title="No files" hint="Agents share files with agentmesh file upload." />` : null}
      ${(files ?? []).length > 0 ? html`<div class="table-wrap"><table class="table"><thead><tr><th>Name</th><th>Owner</th><th>Size</th><th>Type</th><th>Visibility</th><th>Uploaded</th></tr></thead>
        <tbody>${(files ?? []).map(f => html`<tr><td>${text(f.filename, 120)}</td><td title=${f.ownerAmid}>${who(f.ownerAmid)}</td><td>${bytes(f.size)}</td><td>${text(f.type, 60)}</td><td>${text(f.visibility, 20)}</td><td>${time(f.createdAt)}</td></tr>`)}</tbody></table></div>` : null}
    </section>
  </div>`
}

function UpdateRow ({ u, a }: { u: any, a: any }): any {
  const c = a?.counts ?? {}
  const total = Math.max(1, Number(a?.totalAgents ?? 0))
  const parts: Array<[string, number]> = [['completed', c.completed ?? 0], ['accepted', c.accepted ?? 0], ['rejected', c.rejected ?? 0], ['pending', c.pending ?? 0]]
  return html`<article class="update" data-update=${u.updateId}>
    <header><strong>${text(u.title, 200)}</strong> <span class="muted">v${text(u.version, 40)}</span> <${Badge} kind=${u.updateType ?? 'update'} />
      ${u.breakingChange ? html`<${Badge} kind="breaking" />` : null} ${u.active === false ? html`<${Badge} kind="expired" />` : null}</header>
    ${u.description !== undefined ? html`<p>${text(u.description, 1000)}</p>` : null}
    ${a === undefined ? html`<p class="muted small">Adoption not available.</p>` : html`
      <div class="bar" role="img" aria-label=${`adoption: ${c.completed ?? 0} completed, ${c.accepted ?? 0} accepted, ${c.rejected ?? 0} rejected, ${c.pending ?? 0} no answer of ${a.totalAgents}`}>
        ${parts.filter(([, n]) => n > 0).map(([k, n]) => html`<span class=${'seg-' + k} style=${{ width: `${(n / total) * 100}%` }} title=${`${k}: ${n}`}></span>`)}
      </div>
      <p class="legend">${parts.map(([k, n]) => html`<span class=${'key key-' + k} data-count=${k}>${k === 'pending' ? 'no answer' : k} <b>${n}</b></span>`)}<span class="muted">of ${a.totalAgents} agents</span></p>`}
    <p class="muted small">by ${who(u.createdBy)} · ${time(u.createdAt)}${u.requiredVersion !== undefined ? ` · requires ${u.requiredVersion}` : ''}</p>
  </article>`
}

function EventRow ({ e, protocol }: { e: any, protocol: any }): any {
  return html`<article class=${'cat sev-' + String(e.severity).replace(/[^a-z]/g, '')}>
    <header><${Badge} kind=${e.severity} /> <strong>${text(e.title, 200)}</strong> <${Badge} kind=${e.status} /> <span class="muted small">${text(e.eventType, 40)} · reported by ${who(e.reportedBy)} · ${time(e.reportedAt)}</span></header>
    ${e.description !== '' ? html`<p>${text(e.description, 2000)}</p>` : null}
    ${protocol === undefined ? html`<p class="muted small">Recovery: ${text(e.recoveryProtocol, 200)}</p>` : html`<details><summary>Recovery protocol: ${protocol.title}</summary>
      <ol>${(protocol.steps ?? []).map((s: any) => html`<li><b>${s.who}</b>: ${s.action}${s.command === undefined ? '' : html` <code>${s.command}</code>`}</li>`)}</ol></details>`}
    ${e.resolutionNotes !== undefined ? html`<p class="muted">Resolution: ${text(e.resolutionNotes, 1000)}</p>` : null}
  </article>`
}
