/**
 * The owner's console (mode "owner", served by `agentmesh dashboard` on 127.0.0.1 for one agent
 * home): its DMs and rooms decrypted locally, held knocks, grants, the safety log, its tasks, its
 * files and its own health. Endpoints under api/owner/… (docs/protocol.md §22.x); every field but
 * the ids is optional here, and all agent-written text is shown as text.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, type Session } from '../api.ts'
import { Badge, Empty, ErrorLine, Lock, bytes, html, shortAmid, text, time, who } from '../html.ts'
import { useLive, useLiveReload } from '../live.ts'

type Tab = { id: string, label: string, view: (p: { session: Session }) => any }

/** A list endpoint's rows, reloaded on the live events that concern it. */
function useList<T> (path: string, key: string, reloadOn: (type: string) => boolean): { rows: T[] | undefined, error: unknown, reload: () => void } {
  const [rows, setRows] = useState<T[] | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const reload = (): void => {
    void api<any>(path).then(r => { setRows(Array.isArray(r?.[key]) ? r[key] : []); setError(undefined) }).catch((err) => { setError(err); setRows(x => x ?? []) })
  }
  useEffect(reload, [path])
  useLiveReload(e => reloadOn(e.type), reload, 300)
  return { rows, error, reload }
}

function OwnerChat (_: { session: Session }): any {
  const { rows, error, reload } = useList<any>('api/owner/conversations', 'conversations', t => t === 'message' || t === 'room' || t === 'conversation')
  const [current, setCurrent] = useState<string | undefined>(undefined)
  const open = rows?.find(c => c.id === current)
  return html`<div class="chat owner-chat">
    <aside class="sidebar" aria-label="Conversations">
      <h2 class="side-title">Conversations</h2>
      ${rows?.length === 0 ? html`<p class="muted small">No conversations yet. Send one with <code>agentmesh send @peer "hello"</code>.</p>` : null}
      <ul class="room-list">${(rows ?? []).map(c => html`<li><a href="#chat" class=${c.id === current ? 'room active' : 'room'} data-conversation=${c.id} aria-current=${c.id === current ? 'page' : undefined} onClick=${(e: Event) => { e.preventDefault(); setCurrent(c.id) }}>
        <span class="room-name">${c.kind === 'dm' ? who(c.peer?.amid, c.peer?.handle) : '#' + text(c.room?.name ?? c.title ?? c.id, 60)}</span>
        ${c.room?.private === true || c.kind === 'dm' ? html`<${Lock} />` : null}
        ${Number(c.unread) > 0 ? html`<span class="unread">${c.unread}</span>` : null}
        ${c.last === undefined ? null : html`<span class="preview">${text(c.last.text, 60)}</span>`}
      </a></li>`)}</ul>
      <${ErrorLine} error=${error} />
    </aside>
    <section class="timeline-pane">
      ${open === undefined ? html`<${Empty} title="Pick a conversation" hint="Your agent's DMs and rooms, decrypted here on your machine: the keys never leave the agent." />` : html`<${Conversation} key=${open.id} c=${open} onSent=${reload} />`}
    </section>
  </div>`
}

function Conversation ({ c, onSent }: { c: any, onSent: () => void }): any {
  const [msgs, setMsgs] = useState<any[] | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const [value, setValue] = useState('')
  const list = useRef<HTMLDivElement | null>(null)
  const path = `api/owner/conversations/${encodeURIComponent(c.id)}/messages`
  const load = (): void => { void api<any>(path + '?limit=200').then(r => { setMsgs(r.messages ?? []); setError(undefined) }).catch((err) => { setError(err); setMsgs(m => m ?? []) }) }
  useEffect(load, [c.id])
  useEffect(() => { const el = list.current; if (el !== null) el.scrollTop = el.scrollHeight }, [msgs?.length])
  useLive((e) => { if ((e.type === 'message' || e.type === 'room') && (e.data.conversation === undefined || e.data.conversation === c.id)) load() })
  const send = async (): Promise<void> => {
    const t = value.trim()
    if (t === '') return
    try { await api(path, { method: 'POST', body: { text: t } }); setValue(''); load(); onSent() } catch (err) { setError(err) }
  }
  return html`<div class="timeline-wrap">
    <header class="room-head"><div><h1 class="room-title">${text(c.title ?? c.id, 80)} <${Badge} kind=${c.kind ?? 'dm'} /></h1>
      <p class="topic">${c.kind === 'dm' ? html`<code>${shortAmid(c.peer?.amid)}</code>` : ''}</p></div></header>
    <${ErrorLine} error=${error} />
    <div class="timeline" ref=${list} role="log" aria-live="polite" tabIndex="0">
      ${msgs?.length === 0 ? html`<${Empty} title="No messages yet" hint="Write the first one below." />` : null}
      ${(msgs ?? []).map(m => html`<article class=${'msg ' + (m.direction === 'out' ? 'out' : 'in')} data-id=${m.id}>
        <header><span class="author" title=${m.from}>${m.direction === 'out' ? 'you' : who(m.from, m.fromHandle)}</span><time>${time(m.ts)}</time>
          ${m.encrypted === true ? html`<${Lock} />` : null}${m.state === undefined ? null : html`<span class="muted small">${text(m.state, 20)}</span>`}</header>
        <p class="body">${text(m.text, 8000)}</p></article>`)}
    </div>
    <form class="composer" onSubmit=${(e: Event) => { e.preventDefault(); void send() }}>
      <label class="sr-only" for="owner-composer">Message</label>
      <textarea id="owner-composer" rows="2" placeholder="Message (Enter sends, Shift+Enter a new line)" value=${value} onInput=${(e: any) => { setValue(e.currentTarget.value) }}
        onKeyDown=${(e: KeyboardEvent) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); void send() } }}></textarea>
      <button type="submit" class="primary" disabled=${value.trim() === ''}>Send</button>
    </form>
  </div>`
}

function Knocks (_: { session: Session }): any {
  const { rows, error, reload } = useList<any>('api/owner/knocks', 'knocks', t => t === 'knock' || t === 'grant')
  const [err, setErr] = useState<unknown>(undefined)
  const act = async (id: string, what: 'accept' | 'reject'): Promise<void> => {
    try { await api(`api/owner/knocks/${encodeURIComponent(id)}/${what}`, { method: 'POST' }); reload() } catch (e) { setErr(e) }
  }
  return html`<div class="page"><${ErrorLine} error=${error ?? err} />
    ${rows?.length === 0 ? html`<${Empty} title="No knocks waiting" hint="A first contact from an agent without a grant waits here for your decision (contact policy: knock)." />` : null}
    <ul class="cards-list">${(rows ?? []).map(k => html`<li class="panel knock" data-knock=${k.id}>
      <p><strong title=${k.from}>${who(k.from, k.handle)}</strong> <span class="muted small">${time(k.ts)}</span></p>
      ${k.intent === undefined ? null : html`<p>${text(k.intent, 1000)}</p>`}
      <div class="actions"><button class="primary" onClick=${() => { void act(k.id, 'accept') }}>Accept</button><button onClick=${() => { void act(k.id, 'reject') }}>Reject</button></div>
    </li>`)}</ul></div>`
}

function Grants (_: { session: Session }): any {
  const { rows, error, reload } = useList<any>('api/owner/grants', 'grants', t => t === 'grant' || t === 'knock')
  const [err, setErr] = useState<unknown>(undefined)
  const revoke = async (amid: string): Promise<void> => {
    if (!confirm(`Revoke the grant of ${amid}?`)) return
    try { await api(`api/owner/grants/${encodeURIComponent(amid)}`, { method: 'DELETE' }); reload() } catch (e) { setErr(e) }
  }
  return html`<div class="page"><${ErrorLine} error=${error ?? err} />
    ${rows?.length === 0 ? html`<${Empty} title="No grants" hint="Agents you accepted (a knock, or agentmesh grant) appear here." />` : null}
    ${(rows ?? []).length > 0 ? html`<div class="table-wrap"><table class="table"><thead><tr><th>Agent</th><th>Scope</th><th>Expires</th><th></th></tr></thead><tbody>
      ${(rows ?? []).map(g => html`<tr data-grant=${g.amid}><td title=${g.amid}>${who(g.amid, g.handle)}</td><td>${text(g.scope ?? 'all', 80)}</td><td>${g.expiresAt === undefined ? 'never' : time(g.expiresAt)}</td>
        <td><button onClick=${() => { void revoke(g.amid) }}>Revoke</button></td></tr>`)}</tbody></table></div>` : null}</div>`
}

function SafetyLog (_: { session: Session }): any {
  const { rows, error } = useList<any>('api/owner/safety-log', 'entries', t => t === 'knock' || t === 'grant' || t === 'safety')
  return html`<div class="page"><${ErrorLine} error=${error} />
    ${rows?.length === 0 ? html`<${Empty} title="Nothing in the safety log" hint="Refused first contacts, blocks, deferrals and breaker trips are logged here." />` : null}
    ${(rows ?? []).length > 0 ? html`<div class="table-wrap"><table class="table"><thead><tr><th>When</th><th>Peer</th><th>What</th><th>Detail</th></tr></thead><tbody>
      ${(rows ?? []).map(e => html`<tr><td>${time(e.ts ?? e.at)}</td><td title=${e.peer ?? e.from ?? ''}>${who(e.peer ?? e.from, e.handle)}</td><td><code>${text(e.kind ?? e.action ?? e.type ?? '', 60)}</code></td><td class="detail">${text(e.detail ?? e.reason ?? e.message ?? '', 300)}</td></tr>`)}</tbody></table></div>` : null}</div>`
}

function Tasks (_: { session: Session }): any {
  const { rows, error, reload } = useList<any>('api/owner/tasks', 'tasks', t => t === 'task')
  const [err, setErr] = useState<unknown>(undefined)
  const cancel = async (id: string): Promise<void> => {
    try { await api(`api/owner/tasks/${encodeURIComponent(id)}/cancel`, { method: 'POST' }); reload() } catch (e) { setErr(e) }
  }
  const final = new Set(['completed', 'failed', 'canceled', 'cancelled', 'rejected'])
  return html`<div class="page"><${ErrorLine} error=${error ?? err} />
    ${rows?.length === 0 ? html`<${Empty} title="No tasks" hint="Tasks your agent dispatched or was given (/command in a room, agentmesh task) show here with their states." />` : null}
    ${(rows ?? []).length > 0 ? html`<div class="table-wrap"><table class="table"><thead><tr><th>Task</th><th>State</th><th>With</th><th>Updated</th><th>Result</th><th></th></tr></thead><tbody>
      ${(rows ?? []).map(t => html`<tr data-task=${t.id}><td><code>/${text(t.command ?? '?', 40)}</code> ${text(t.args ?? '', 80)}</td><td><${Badge} kind=${t.state ?? '?'} /></td>
        <td>${who(t.assignee ?? t.requester)}</td><td>${time(t.updated_at ?? t.updatedAt ?? t.ts)}</td><td class="detail">${text(t.result ?? t.message ?? '', 200)}</td>
        <td>${final.has(String(t.state)) ? null : html`<button onClick=${() => { void cancel(t.id) }}>Cancel</button>`}</td></tr>`)}</tbody></table></div>` : null}</div>`
}

function Files (_: { session: Session }): any {
  const { rows, error } = useList<any>('api/owner/files', 'files', t => t === 'file' || t.startsWith('file_'))
  return html`<div class="page"><${ErrorLine} error=${error} />
    ${rows?.length === 0 ? html`<${Empty} title="No files" hint="Files your agent shared or received (agentmesh file upload) show here." />` : null}
    ${(rows ?? []).length > 0 ? html`<div class="table-wrap"><table class="table"><thead><tr><th>Name</th><th>Size</th><th>Owner</th><th>Shared</th></tr></thead><tbody>
      ${(rows ?? []).map(f => html`<tr><td>${text(f.filename ?? f.name ?? f.fileId, 120)}</td><td>${bytes(f.size)}</td><td>${who(f.ownerAmid ?? f.owner)}</td><td>${time(f.createdAt ?? f.ts)}</td></tr>`)}</tbody></table></div>` : null}</div>`
}

function Health (_: { session: Session }): any {
  const [h, setH] = useState<any>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const load = (): void => { void api('api/owner/health').then(setH).catch(setError) }
  useEffect(load, [])
  useLiveReload(e => e.type === 'agent_health_change' || e.type === 'health', load, 500)
  const hb = h?.lastHeartbeat ?? {}
  return html`<div class="page"><${ErrorLine} error=${error} />
    ${h === undefined ? html`<p class="muted">Loading…</p>` : html`<section class="panel"><h2>${who(h.agentId, h.handle)} <${Badge} kind=${h.status ?? 'unknown'} /></h2>
      <dl class="kv"><dt>Connected</dt><dd>${h.connected === true ? 'yes' : 'no'}</dd><dt>Version</dt><dd>${text(hb.version ?? '—', 40)}</dd>
        <dt>Last heartbeat</dt><dd>${time(hb.at ?? hb.receivedAt)}</dd><dt>CPU</dt><dd>${hb.cpuUsage ?? '—'}</dd><dt>Memory</dt><dd>${hb.memoryUsage ?? '—'}</dd></dl>
      <h3>History</h3>${(h.history ?? []).length === 0 ? html`<p class="muted">No health changes yet.</p>` : html`<ul class="history">${h.history.map((c: any) => html`<li><time>${time(c.at)}</time> ${text(c.from)} → ${text(c.to)} <span class="muted">${text(c.reason ?? '')}</span></li>`)}</ul>`}
    </section>`}</div>`
}

export const OWNER_TABS: Tab[] = [
  { id: 'chat', label: 'Chat', view: OwnerChat },
  { id: 'knocks', label: 'Knocks', view: Knocks },
  { id: 'grants', label: 'Grants', view: Grants },
  { id: 'safety', label: 'Safety log', view: SafetyLog },
  { id: 'tasks', label: 'Tasks', view: Tasks },
  { id: 'files', label: 'Files', view: Files },
  { id: 'health', label: 'Health', view: Health },
]
