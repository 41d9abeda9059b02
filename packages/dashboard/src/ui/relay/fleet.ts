/** Fleet: every agent with handle, AMID, role, tier, presence, health and version; search and filter; an agent's page. */
import { useEffect, useState } from 'preact/hooks'
import { api, type Session } from '../api.ts'
import { Badge, Dot, Empty, ErrorLine, ago, html, text, time, who } from '../html.ts'
import { useLiveReload } from '../live.ts'

interface Row { amid: string, handle?: string, status: string, lastHeartbeatAt: number | null, version?: string, presence?: string, role?: string, tier?: string }

export function FleetTab (_: { session: Session }): any {
  const [rows, setRows] = useState<Row[] | undefined>(undefined)
  const [summary, setSummary] = useState<any>(undefined)
  const [query, setQuery] = useState('')
  const [filter, setFilter] = useState('all')
  const [error, setError] = useState<unknown>(undefined)
  const [selected, setSelected] = useState<string | undefined>(undefined)
  const load = async (): Promise<void> => {
    try {
      const [dash, pres, roles, reg] = await Promise.all([
        api<any>('api/v1/health/dashboard?limit=200'),
        api<any>('api/v1/presence?limit=200').catch(() => ({ agents: [] })),
        api<any>('api/v1/roles').catch(() => ({ roles: [] })),
        api<any>('api/v1/agents?limit=100').catch(() => ({ agents: [] })),
      ])
      const presence = new Map<string, string>((pres.agents ?? []).map((a: any) => [a.amid, a.status]))
      const role = new Map<string, string>((roles.roles ?? []).map((r: any) => [r.amid, r.role]))
      const profiles = new Map<string, any>((reg.agents ?? []).map((a: any) => [a.amid, a]))
      setSummary(dash)
      setRows((dash.agentList ?? []).map((a: any) => ({
        ...a,
        version: a.version ?? profiles.get(a.amid)?.version,
        tier: profiles.get(a.amid)?.tier,
        presence: presence.get(a.amid) ?? 'offline',
        role: role.get(a.amid) ?? roles.default ?? 'worker',
      })))
      setError(undefined)
    } catch (err) { setError(err); setRows(r => r ?? []) }
  }
  useEffect(() => { void load() }, [])
  useLiveReload(e => e.type === 'presence' || e.type === 'agent_health_change' || (e.type === 'audit' && /^(role|handle|health)\./.test(String(e.data.action))), () => { void load() }, 500)
  if (selected !== undefined) return html`<${AgentPage} amid=${selected} onBack=${() => { setSelected(undefined) }} />`
  const q = query.trim().toLowerCase()
  const shown = (rows ?? []).filter(r => (filter === 'all' || r.status === filter || r.presence === filter || r.role === filter || r.tier === filter) &&
    (q === '' || r.amid.toLowerCase().includes(q) || (r.handle ?? '').toLowerCase().includes(q) || (r.version ?? '').toLowerCase().includes(q)))
  return html`<div class="page">
    <div class="cards">
      ${['totalAgents', 'healthy', 'degraded', 'unhealthy', 'offline', 'unknown', 'criticalEvents'].map(k => html`<div class=${'stat stat-' + k}><span class="stat-n">${summary?.[k] ?? '—'}</span><span class="stat-l">${k === 'totalAgents' ? 'agents' : k === 'criticalEvents' ? 'open critical events' : k}</span></div>`)}
    </div>
    <div class="toolbar">
      <label class="sr-only" for="fleet-search">Search agents</label>
      <input id="fleet-search" type="search" placeholder="Search by handle, AMID or version" value=${query} onInput=${(e: any) => { setQuery(e.currentTarget.value) }} />
      <label class="sr-only" for="fleet-filter">Filter</label>
      <select id="fleet-filter" value=${filter} onChange=${(e: any) => { setFilter(e.currentTarget.value) }}>
        ${['all', 'online', 'idle', 'offline', 'healthy', 'degraded', 'unhealthy', 'unknown', 'master', 'warden', 'worker'].map(f => html`<option value=${f}>${f}</option>`)}
      </select>
    </div>
    <${ErrorLine} error=${error} />
    ${rows !== undefined && rows.length === 0 ? html`<${Empty} title="No agents yet" hint="Agents appear here once they connect: agentmesh init, then agentmesh listen." />` : null}
    ${shown.length > 0 ? html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Agent</th><th>AMID</th><th>Role</th><th>Tier</th><th>Presence</th><th>Health</th><th>Version</th><th>Last heartbeat</th></tr></thead>
      <tbody>${shown.map(r => html`<tr data-amid=${r.amid}>
        <td><button class="link" onClick=${() => { setSelected(r.amid) }}>${who(r.amid, r.handle)}</button></td>
        <td><code title=${r.amid}>${r.amid.slice(0, 14)}…</code></td>
        <td>${r.role}</td>
        <td>${text(r.tier ?? '—', 30)}</td>
        <td><${Dot} status=${r.presence ?? 'offline'} /> ${r.presence}</td>
        <td><${Badge} kind=${r.status} /></td>
        <td>${text(r.version ?? '—', 40)}</td>
        <td>${r.lastHeartbeatAt === null ? 'never' : ago(r.lastHeartbeatAt)}</td>
      </tr>`)}</tbody></table></div>` : rows !== undefined && rows.length > 0 ? html`<p class="muted">No agent matches.</p>` : null}
  </div>`
}

function AgentPage ({ amid, onBack }: { amid: string, onBack: () => void }): any {
  const [data, setData] = useState<any>({})
  const [error, setError] = useState<unknown>(undefined)
  useEffect(() => {
    const e = encodeURIComponent(amid)
    void Promise.all([
      api(`api/v1/agents/${e}`).catch((err) => ({ error: err })),
      api(`api/v1/agents/${e}/health`).catch((err) => ({ error: err })),
      api(`api/v1/agents/${e}/reputation`).catch(() => undefined),
      api(`api/v1/agents/${e}/reputation/flags`).catch(() => undefined),
    ]).then(([agent, health, rep, flags]) => { setData({ agent, health, rep, flags }) }).catch(setError)
  }, [amid])
  const a = data.agent ?? {}
  const h = data.health ?? {}
  const hb = h.lastHeartbeat ?? {}
  return html`<div class="page agent-page">
    <button class="ghost" onClick=${onBack}>← All agents</button>
    <h1>${who(amid, h.handle ?? a.handle)}</h1>
    <p><code class="wrap">${amid}</code></p>
    <${ErrorLine} error=${error} />
    <div class="grid2">
      <section class="panel"><h2>Profile</h2>
        <dl class="kv">
          <dt>Tier</dt><dd>${text(a.tier ?? a.verification ?? '—', 40)}</dd>
          <dt>Name</dt><dd>${text(a.display_name ?? a.name ?? '—', 80)}</dd>
          <dt>Registered</dt><dd>${time(a.created_at ?? a.registered_at)}</dd>
          <dt>Health</dt><dd><${Badge} kind=${h.status ?? 'unknown'} /> ${h.connected === true ? 'connected' : 'not connected'}</dd>
          <dt>Version</dt><dd>${text(hb.version ?? '—', 40)}</dd>
          <dt>Uptime</dt><dd>${hb.uptimeSeconds === undefined ? '—' : `${Math.round(hb.uptimeSeconds / 60)} min`}</dd>
        </dl>
      </section>
      <section class="panel"><h2>Reputation</h2>
        ${data.rep === undefined ? html`<p class="muted">No reputation data.</p>` : html`<dl class="kv">
          <dt>Score</dt><dd>${data.rep.score === null ? 'no ratings yet' : Number(data.rep.score).toFixed(3)}</dd>
          <dt>Ratings</dt><dd>${data.rep.ratings}</dd>
          <dt>Flagged</dt><dd>${data.rep.flagged ? 'yes' : 'no'}</dd></dl>`}
        ${(data.flags?.flags ?? []).length > 0 ? html`<h3>Flags</h3><ul>${data.flags.flags.map((f: any) => html`<li>${time(f.at)}: ${Number(f.from).toFixed(2)} → ${Number(f.to).toFixed(2)}</li>`)}</ul>` : null}
      </section>
    </div>
    <section class="panel"><h2>Health history</h2>
      ${(h.history ?? []).length === 0 ? html`<p class="muted">No health changes recorded: the agent sends heartbeats with <code>agentmesh health</code> or the SDK's health(conn).</p>` : html`<ul class="history">
        ${h.history.map((c: any) => html`<li><time>${time(c.at)}</time> <${Badge} kind=${String(c.from ?? '?')} /> → <${Badge} kind=${String(c.to ?? c.status ?? '?')} /> ${text(c.reason ?? '', 200)}</li>`)}</ul>`}
    </section>
  </div>`
}
