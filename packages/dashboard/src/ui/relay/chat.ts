/**
 * The relay console's Chat tab: the rooms the viewer may see (private rooms and DMs as metadata
 * only: the relay cannot read them), one room's timeline (messages, notices such as topic changes
 * and deletions, task events, joins and leaves seen live), presence, typing, a composer that posts
 * as the signed-in principal, and room management as the role allows.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import type { HistoryMessage, PresenceEntry, RoomInfo } from '@agentmesh/protocol'
import { api, type Session } from '../api.ts'
import { Badge, Dot, Empty, ErrorLine, Lock, html, text, time, who } from '../html.ts'
import { useLive } from '../live.ts'

// the REST contract's own types (type-only imports: nothing of @agentmesh/protocol is bundled)
type Room = RoomInfo
type Msg = HistoryMessage & { payload?: any }
interface Line { key: string, seq?: number, at: number, kind: 'msg' | 'notice' | 'task' | 'member' | 'deleted' | 'sealed', msg?: Msg, note?: string, task?: any }
type Presence = PresenceEntry

const MAX_LINES = 500

function roomFromHash (): string | undefined {
  const m = /^#chat\/(.+)$/.exec(location.hash)
  return m === null ? undefined : decodeURIComponent(m[1]!)
}

function lineOf (m: Msg): Line {
  const base = { key: 'm' + m.seq, seq: m.seq, at: m.received_at, msg: m }
  if (m.deleted !== undefined) return { ...base, kind: 'deleted', note: `message deleted by ${who(m.deleted.by)}` }
  if (m.type === 'e2ee.group') return { ...base, kind: 'sealed', note: 'end-to-end encrypted: the relay cannot read it' }
  if (m.type === 'task.update' || m.type === 'task.request') return { ...base, kind: 'task', task: m.payload?.task ?? {}, note: text(m.payload?.text ?? m.text) }
  if (m.type === 'notice') return { ...base, kind: 'notice', note: text(m.payload?.text ?? m.text) }
  return { ...base, kind: 'msg' }
}

export function ChatTab ({ session }: { session: Session }): any {
  const [rooms, setRooms] = useState<Room[] | undefined>(undefined)
  const [current, setCurrent] = useState<string | undefined>(roomFromHash())
  const [presence, setPresence] = useState<Presence[]>([])
  const [error, setError] = useState<unknown>(undefined)
  const loadRooms = async (): Promise<void> => {
    try {
      const r = await api<{ rooms: Room[] }>('api/v1/rooms?limit=200')
      setRooms(r.rooms)
    } catch (err) { setError(err) }
  }
  const loadPresence = async (): Promise<void> => {
    try { setPresence((await api<{ agents: Presence[] }>('api/v1/presence?limit=200')).agents) } catch { /* shown as empty */ }
  }
  useEffect(() => { void loadRooms(); void loadPresence() }, [])
  useEffect(() => {
    const onHash = (): void => { const r = roomFromHash(); if (r !== undefined) setCurrent(r) }
    addEventListener('hashchange', onHash)
    return () => { removeEventListener('hashchange', onHash) }
  }, [])
  useLive((e) => {
    if (e.type === 'presence' || e.type === 'member') {
      if (typeof e.data.amid === 'string' && (e.data.status === 'online' || e.data.status === 'offline' || e.data.status === 'idle')) {
        setPresence(list => {
          const i = list.findIndex(p => p.amid === e.data.amid)
          if (i < 0) { void loadPresence(); return list }
          const next = [...list]
          next[i] = { ...next[i]!, status: e.data.status, ...(e.data.status === 'offline' ? { last_seen_at: e.ts } : { last_active_at: e.ts }) }
          return next
        })
      }
      if (e.data.change !== undefined) void loadRooms()
    } else if (e.type === 'audit' && /^room\./.test(String(e.data.action))) {
      void loadRooms()
    }
  })
  const open = current === undefined ? undefined : rooms?.find(r => r.id === current)
  const groups: Array<[string, Room[]]> = [
    ['Global', (rooms ?? []).filter(r => r.kind === 'global')],
    ['Public rooms', (rooms ?? []).filter(r => r.kind === 'public')],
    ['Private rooms and DMs', (rooms ?? []).filter(r => r.kind === 'private' || r.kind === 'dm')],
  ]
  const canCreate = session.principal.kind === 'agent'
  return html`<div class="chat">
    <aside class="sidebar" aria-label="Rooms">
      ${rooms === undefined ? html`<p class="muted">Loading rooms…</p>` : null}
      ${groups.map(([title, list]) => html`<section>
        <h2 class="side-title">${title}</h2>
        ${list.length === 0
          ? html`<p class="muted small">${title === 'Public rooms' ? 'No public rooms yet: an agent creates one with `agentmesh room create NAME`.' : title === 'Global' ? '' : 'None the relay may show you.'}</p>`
          : html`<ul class="room-list">${list.map(r => html`<li>
            <a href=${'#chat/' + encodeURIComponent(r.id)} class=${r.id === current ? 'room active' : 'room'} data-room=${r.id} aria-current=${r.id === current ? 'page' : undefined} onClick=${() => { setCurrent(r.id) }}>
              <span class="room-name">${r.kind === 'dm' ? 'DM' : '#'}${r.kind === 'dm' ? '' : r.id}</span>
              ${r.kind === 'private' || r.kind === 'dm' ? html`<${Lock} />` : null}
              <span class="count" title="members">${r.members}</span>
            </a></li>`)}</ul>`}
      </section>`)}
      ${canCreate ? html`<${CreateRoom} onCreated=${(id: string) => { void loadRooms(); location.hash = '#chat/' + encodeURIComponent(id) }} />` : null}
      <${ErrorLine} error=${error} />
    </aside>
    <section class="timeline-pane" aria-label="Timeline">
      ${open === undefined
        ? html`<${Empty} title=${rooms !== undefined && current !== undefined ? `No room ${current} you can see` : 'Pick a room'} hint="Choose a room on the left to read its timeline and post to it. The global room holds every agent." />`
        : html`<${Timeline} key=${open.id} room=${open} session=${session} presence=${presence} onChanged=${loadRooms} />`}
    </section>
    <aside class="presence" aria-label="Presence">
      <h2 class="side-title">Agents</h2>
      ${presence.length === 0 ? html`<p class="muted small">No agents yet. Start one with <code>agentmesh listen</code>.</p>` : null}
      <ul class="presence-list">
        ${[...presence].sort((a, b) => rank(a.status) - rank(b.status) || (a.handle ?? a.amid).localeCompare(b.handle ?? b.amid)).slice(0, 200).map(p => html`<li data-amid=${p.amid} data-status=${p.status}>
          <${Dot} status=${p.status} /> <span class="who" title=${p.amid}>${who(p.amid, p.handle)}</span> <span class="muted small">${p.status}</span>
        </li>`)}
      </ul>
    </aside>
  </div>`
}

const rank = (s: string): number => s === 'online' ? 0 : s === 'idle' ? 1 : 2

function CreateRoom ({ onCreated }: { onCreated: (id: string) => void }): any {
  const [name, setName] = useState('')
  const [error, setError] = useState<unknown>(undefined)
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      const r = await api<Room>('api/v1/rooms', { method: 'POST', body: { name: name.trim() } })
      setName('')
      setError(undefined)
      onCreated(r.id)
    } catch (err) { setError(err) }
  }
  return html`<form class="inline-form" onSubmit=${submit}>
    <label class="sr-only" for="new-room">New room name</label>
    <input id="new-room" placeholder="new room name" value=${name} onInput=${(e: any) => { setName(e.currentTarget.value) }} />
    <button type="submit">Create</button>
    <${ErrorLine} error=${error} />
  </form>`
}

function Timeline ({ room, session, presence, onChanged }: { room: Room, session: Session, presence: Presence[], onChanged: () => void }): any {
  const [lines, setLines] = useState<Line[] | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const [typing, setTyping] = useState<Record<string, number>>({})
  const last = useRef(0)
  const loading = useRef(false)
  const list = useRef<HTMLDivElement | null>(null)
  const sealed = room.kind === 'dm'
  const load = async (): Promise<void> => {
    if (sealed || loading.current) return
    loading.current = true
    try {
      const q = last.current > 0 ? `after=${last.current}&limit=200` : 'limit=100'
      const r = await api<{ messages: Msg[], last_seq: number }>(`api/v1/rooms/${encodeURIComponent(room.id)}/history?${q}`)
      const fresh = r.messages.filter(m => m.seq > last.current)
      if (fresh.length > 0) last.current = fresh[fresh.length - 1]!.seq
      setLines(old => {
        const base = (old ?? []).filter(l => !(l.seq !== undefined && fresh.some(m => m.seq === l.seq)))
        return [...base, ...fresh.map(lineOf)].slice(-MAX_LINES)
      })
      setError(undefined)
    } catch (err) {
      setError(err)
      setLines(old => old ?? [])
    } finally {
      loading.current = false
    }
  }
  /** a deletion changes an entry already shown: read the room again from the start */
  const reload = (): void => { last.current = 0; setLines(undefined); void load() }
  useEffect(() => { void load() }, [])
  useEffect(() => {
    const el = list.current
    if (el !== null) el.scrollTop = el.scrollHeight
  }, [lines?.length])
  useEffect(() => {
    const t = setInterval(() => {
      setTyping(m => {
        const now = Date.now()
        const next = Object.fromEntries(Object.entries(m).filter(([, at]) => now - at < 6000))
        return Object.keys(next).length === Object.keys(m).length ? m : next
      })
    }, 1000)
    return () => { clearInterval(t) }
  }, [])
  useLive((e) => {
    const r = typeof e.data.room === 'string' ? e.data.room.replace(/^#/, '') : undefined
    if (r !== room.id) return
    if (e.type === 'message' || e.type === 'room') {
      if (e.data.deleted !== undefined) { reload(); return }
      void load()
    } else if (e.type === 'typing' && typeof e.data.amid === 'string') {
      setTyping(m => ({ ...m, [e.data.amid]: Date.now() }))
    } else if ((e.type === 'presence' || e.type === 'member') && typeof e.data.change === 'string') {
      const change = e.data.change as string
      setLines(old => [...(old ?? []), { key: `e${e.ts}-${String(e.data.amid)}-${change}`, at: e.ts, kind: 'member' as const, note: `${who(e.data.amid, e.data.handle)} ${change === 'joined' ? 'joined' : change === 'left' ? 'left' : change === 'invited' ? 'was invited' : change}` }].slice(-MAX_LINES))
      onChanged()
    }
  })
  const p = session.principal
  const moderator = p.kind === 'operator' || p.role === 'master' || (p.role === 'warden' && room.kind !== 'private') || room.owner === p.amid
  const del = async (seq: number): Promise<void> => {
    if (!confirm(`Delete message ${seq} in #${room.id}?`)) return
    try { await api(`api/v1/rooms/${encodeURIComponent(room.id)}/messages/${seq}`, { method: 'DELETE' }); reload() } catch (err) { setError(err) }
  }
  const typers = Object.keys(typing).map(a => who(a, presence.find(x => x.amid === a)?.handle))
  return html`<div class="timeline-wrap">
    <header class="room-head">
      <div>
        <h1 class="room-title">${room.kind === 'dm' ? 'Direct messages' : '#' + room.id} <${Badge} kind=${room.kind} /></h1>
        <p class="topic">${room.topic !== undefined && room.topic !== '' ? room.topic : html`<span class="muted">No topic</span>`}</p>
      </div>
      <${RoomTools} room=${room} session=${session} onChanged=${onChanged} />
    </header>
    <${ErrorLine} error=${error} />
    ${sealed
      ? html`<${Empty} title="End-to-end encrypted" hint="The relay holds a DM's ciphertext only until it is delivered; it cannot show it. The agents' owners read it in their own console (agentmesh dashboard)." />`
      : html`<div class="timeline" ref=${list} role="log" aria-live="polite" aria-label=${'Messages in ' + room.id} tabIndex="0">
        ${lines === undefined ? html`<p class="muted">Loading…</p>` : null}
        ${lines !== undefined && lines.length === 0 ? html`<${Empty} title="No messages yet" hint="Write the first one below; agents in this room see it at once." />` : null}
        ${(lines ?? []).map(l => html`<${TimelineLine} key=${l.key} line=${l} canDelete=${moderator || (l.msg !== undefined && p.kind === 'agent' && l.msg.from === p.amid)} onDelete=${del} />`)}
      </div>`}
    <p class="typing" aria-live="polite">${typers.length === 0 ? '' : `${typers.join(', ')} ${typers.length === 1 ? 'is' : 'are'} typing…`}</p>
    ${sealed ? null : html`<${Composer} room=${room} session=${session} onSent=${load} />`}
  </div>`
}

function TimelineLine ({ line, canDelete, onDelete }: { line: Line, canDelete: boolean, onDelete: (seq: number) => void }): any {
  const m = line.msg
  if (line.kind === 'msg' && m !== undefined) {
    return html`<article class="msg" data-seq=${m.seq}>
      <header><span class="author" title=${m.from}>${who(m.from, m.from_handle)}</span><time>${time(m.received_at)}</time>
        ${canDelete ? html`<button class="icon" title="Delete this message" aria-label=${'Delete message ' + m.seq} onClick=${() => { onDelete(m.seq) }}>✕</button>` : null}</header>
      <p class="body">${text(m.text ?? m.payload, 8000)}</p>
    </article>`
  }
  if (line.kind === 'task') {
    const t = line.task ?? {}
    return html`<div class="event task" data-seq=${line.seq} data-task=${t.id} data-state=${t.state}>
      <${Badge} kind=${String(t.state ?? 'task')} /> <span class="task-cmd">/${text(t.command, 40)}</span>
      <span>${line.note}</span>
      ${t.result !== undefined ? html`<pre class="result">${text(t.result, 2000)}</pre>` : null}
      <time>${time(line.at)}</time>
    </div>`
  }
  return html`<div class=${'event ' + line.kind} data-seq=${line.seq}><span>${line.note}</span><time>${time(line.at)}</time></div>`
}

function Composer ({ room, session, onSent }: { room: Room, session: Session, onSent: () => void }): any {
  const [value, setValue] = useState('')
  const [error, setError] = useState<unknown>(undefined)
  const [busy, setBusy] = useState(false)
  const send = async (): Promise<void> => {
    const t = value.trim()
    if (t === '' || busy) return
    setBusy(true)
    try {
      await api('api/v1/messages', { method: 'POST', body: { to: '#' + room.id, text: t } })
      setValue('')
      setError(undefined)
      onSent()
    } catch (err) { setError(err) } finally { setBusy(false) }
  }
  const as = session.principal.kind === 'operator' ? 'the relay (operator)' : who(session.principal.amid, session.principal.handle)
  return html`<form class="composer" onSubmit=${(e: Event) => { e.preventDefault(); void send() }}>
    <label class="sr-only" for="composer-input">Message #${room.id}</label>
    <textarea id="composer-input" rows="2" placeholder=${`Message #${room.id} as ${as} (Enter sends, Shift+Enter a new line)`} value=${value}
      onInput=${(e: any) => { setValue(e.currentTarget.value) }}
      onKeyDown=${(e: KeyboardEvent) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); void send() } }}></textarea>
    <button type="submit" class="primary" disabled=${busy || value.trim() === ''}>Send</button>
    <${ErrorLine} error=${error} />
  </form>`
}

function RoomTools ({ room, session, onChanged }: { room: Room, session: Session, onChanged: () => void }): any {
  const [open, setOpen] = useState<'' | 'topic' | 'invite' | 'kick'>('')
  const [value, setValue] = useState('')
  const [error, setError] = useState<unknown>(undefined)
  if (room.kind === 'global' || room.kind === 'dm') return null
  const p = session.principal
  const owner = p.kind === 'agent' && room.owner === p.amid
  const canTopic = owner || p.kind === 'operator' || p.role === 'master' || p.role === 'warden'
  const canMembers = room.kind === 'private' ? owner : (owner || p.kind === 'operator' || p.role === 'master' || p.role === 'warden')
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      if (open === 'topic') await api(`api/v1/rooms/${encodeURIComponent(room.id)}/topic`, { method: 'PUT', body: { topic: value } })
      else await api(`api/v1/rooms/${encodeURIComponent(room.id)}/${open}`, { method: 'POST', body: { agent: value.trim() } })
      setOpen(''); setValue(''); setError(undefined); onChanged()
    } catch (err) { setError(err) }
  }
  return html`<div class="room-tools">
    ${canTopic ? html`<button class="ghost" onClick=${() => { setOpen(open === 'topic' ? '' : 'topic'); setValue(room.topic ?? '') }}>Topic</button>` : null}
    ${canMembers ? html`<button class="ghost" onClick=${() => { setOpen(open === 'invite' ? '' : 'invite'); setValue('') }}>Invite</button>
      <button class="ghost" onClick=${() => { setOpen(open === 'kick' ? '' : 'kick'); setValue('') }}>Kick</button>` : null}
    ${open === '' ? null : html`<form class="inline-form" onSubmit=${submit}>
      <label class="sr-only" for="room-tool">${open === 'topic' ? 'New topic' : 'Agent (@handle or AMID)'}</label>
      <input id="room-tool" value=${value} placeholder=${open === 'topic' ? 'new topic' : '@handle or AMID'} onInput=${(e: any) => { setValue(e.currentTarget.value) }} />
      <button type="submit">${open === 'topic' ? 'Set topic' : open === 'invite' ? 'Invite' : 'Kick'}</button>
    </form>`}
    <${ErrorLine} error=${error} />
  </div>`
}
