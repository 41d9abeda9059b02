/** Relay: connections, message rates and inbox depths over the last minutes (inline SVG), settings and rate limits. */
import { useEffect, useState } from 'preact/hooks'
import { api, type Session } from '../api.ts'
import { ErrorLine, html, text } from '../html.ts'
import { Spark } from '../charts.ts'

export function RelayTab (_: { session: Session }): any {
  const [series, setSeries] = useState<any>(undefined)
  const [info, setInfo] = useState<any>(undefined)
  const [settings, setSettings] = useState<any>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  useEffect(() => {
    const load = async (): Promise<void> => {
      try { setSeries(await api('api/relay')); setError(undefined) } catch (err) { setError(err) }
    }
    void load()
    void api('api/v1/info').then(setInfo).catch(() => {})
    void api<any>('api/v1/settings').then(s => { setSettings(s.settings) }).catch(() => {})
    const t = setInterval(() => { void load() }, 5000)
    return () => { clearInterval(t) }
  }, [])
  const s: any[] = series?.samples ?? []
  const charts: Array<[string, string]> = [['connections', 'Connections'], ['agentsOnline', 'Agents online'], ['receivedPerS', 'Messages in / s'], ['deliveredPerS', 'Deliveries / s'], ['pending', 'Inbox depth (waiting envelopes)']]
  return html`<div class="page">
    <${ErrorLine} error=${error} />
    <div class="charts">
      ${charts.map(([k, label]) => html`<section class="panel chart"><h2>${label}</h2>
        <p class="big">${s.length === 0 ? '—' : s[s.length - 1][k]}</p>
        <${Spark} values=${s.map(x => Number(x[k]) || 0)} label=${label} />
        <p class="muted small">${span(s.length * (series?.intervalMs ?? 5000))}, a sample every ${Math.round((series?.intervalMs ?? 5000) / 1000)} s</p></section>`)}
    </div>
    <div class="grid2">
      <section class="panel"><h2>This relay</h2>${info === undefined ? html`<p class="muted">…</p>` : html`<dl class="kv">
        <dt>Version</dt><dd>${text(info.version)}</dd><dt>Protocol</dt><dd>${text(info.protocol)}</dd><dt>Store</dt><dd>${text(info.store)}</dd>
        <dt>Uptime</dt><dd>${Math.round(Number(info.uptime_s) / 60)} min</dd><dt>Agents</dt><dd>${info.agents}</dd><dt>Pending</dt><dd>${info.pending}</dd>
        <dt>Read-only</dt><dd>${info.read_only ? `yes (${text(info.read_only_reason)})` : 'no'}</dd><dt>Node</dt><dd><code>${text(info.node?.id)}</code> · ${(info.node?.peers ?? []).length} peers</dd>
        <dt>Live consoles</dt><dd>${series?.console?.sessions ?? '—'}</dd></dl>`}</section>
      <section class="panel"><h2>Settings and rate limits</h2>${settings === undefined ? html`<p class="muted">Only the operator and masters read the settings.</p>` : html`<dl class="kv">
        <dt>Idle after</dt><dd>${Math.round(settings.presence_idle_ms / 1000)} s</dd><dt>Task deadline</dt><dd>${settings.task_default_deadline_s} s</dd>
        ${Object.entries(settings.rate_limits ?? {}).map(([k, v]: [string, any]) => html`<dt>${k.replace(/_/g, ' ')}</dt><dd>${typeof v === 'object' && v !== null ? `${v.perMinute ?? v.per_minute ?? '?'} / min, burst ${v.burst ?? '?'}` : text(v, 20)}</dd>`)}</dl>`}
        ${info?.limits === undefined ? null : html`<h3>Limits</h3><dl class="kv">${Object.entries(info.limits).slice(0, 14).map(([k, v]) => html`<dt>${k}</dt><dd>${text(v, 40)}</dd>`)}</dl>`}
      </section>
    </div>
  </div>`
}

function span (ms: number): string {
  return ms < 60_000 ? `the last ${Math.round(ms / 1000)} s` : `the last ${Math.round(ms / 60_000)} min`
}
