/**
 * The AgentMesh console: one page for the relay's console (mode "relay", /dashboard/ on the relay)
 * and an agent owner's console (mode "owner", `agentmesh dashboard`). Everything an agent wrote is
 * rendered as text (Preact escapes it); no inline script or style (CSP 'self').
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, api, liveEvents, setCsrf, type Session } from './api.ts'
import { html, who } from './html.ts'
import { publish } from './live.ts'
import { SignIn } from './signin.ts'
import { ChatTab } from './relay/chat.ts'
import { FleetTab } from './relay/fleet.ts'
import { OpsTab } from './relay/ops.ts'
import { AuditTab } from './relay/audit.ts'
import { RelayTab } from './relay/relay-tab.ts'
import { OWNER_TABS } from './owner/owner.ts'

const RELAY_TABS: Array<{ id: string, label: string, view: (p: { session: Session }) => any }> = [
  { id: 'chat', label: 'Chat', view: ChatTab },
  { id: 'fleet', label: 'Fleet', view: FleetTab },
  { id: 'ops', label: 'Ops', view: OpsTab },
  { id: 'audit', label: 'Audit', view: AuditTab },
  { id: 'relay', label: 'Relay', view: RelayTab },
]

function tabFromHash (ids: string[]): string {
  const h = location.hash.replace(/^#\/?/, '').split('/')[0] ?? ''
  return ids.includes(h) ? h : ids[0]!
}

function Shell ({ session, onSignOut }: { session: Session, onSignOut: () => void }): any {
  const tabs = session.mode === 'owner' ? OWNER_TABS : RELAY_TABS
  const ids = tabs.map(t => t.id)
  const [tab, setTab] = useState(tabFromHash(ids))
  const [live, setLive] = useState(false)
  useEffect(() => {
    const onHash = (): void => { setTab(tabFromHash(ids)) }
    addEventListener('hashchange', onHash)
    return () => { removeEventListener('hashchange', onHash) }
  }, [])
  useEffect(() => liveEvents(publish, setLive), [])
  const p = session.principal
  const current = tabs.find(t => t.id === tab) ?? tabs[0]!
  const View = current.view
  return html`
    <div class="shell">
      <header class="top">
        <div class="brand"><span class="logo" aria-hidden="true"></span><span>AgentMesh</span><span class="mode">${session.mode === 'owner' ? 'owner console' : 'relay console'}</span></div>
        <nav class="tabs" role="tablist" aria-label="Sections">
          ${tabs.map(t => html`<a role="tab" href=${'#' + t.id} aria-selected=${t.id === tab ? 'true' : 'false'} class=${t.id === tab ? 'tab active' : 'tab'} data-tab=${t.id}>${t.label}</a>`)}
        </nav>
        <div class="me">
          <span class=${live ? 'live up' : 'live down'} title=${live ? 'live: events arrive as they happen' : 'reconnecting to the live events…'}>${live ? 'live' : 'offline'}</span>
          <span class="who" title=${p.amid ?? ''}>${p.kind === 'operator' ? 'operator' : who(p.amid, p.handle)}${p.role === undefined ? '' : ` · ${p.role}`}</span>
          ${session.mode === 'relay' ? html`<button class="ghost" onClick=${onSignOut}>Sign out</button>` : null}
        </div>
      </header>
      <main class="content" id="main"><${View} session=${session} /></main>
    </div>`
}

function App (): any {
  const [session, setSession] = useState<Session | undefined>(undefined)
  const [state, setState] = useState<{ loading: boolean, error?: ApiError }>({ loading: true })
  const load = async (): Promise<void> => {
    try {
      const s = await api<Session>('api/session')
      setCsrf(s.csrf)
      setSession(s)
      setState({ loading: false })
    } catch (err) {
      setSession(undefined)
      setState({ loading: false, error: err instanceof ApiError ? err : new ApiError(0, 'AM_ERR_INTERNAL', String(err)) })
    }
  }
  useEffect(() => { void load() }, [])
  useEffect(() => {
    if (session === undefined) return
    // the session's end: back to sign-in
    const t = setTimeout(() => { void load() }, Math.max(1000, Math.min(session.expiresAt - Date.now() + 1000, 2 ** 31 - 1)))
    return () => { clearTimeout(t) }
  }, [session])
  if (state.loading) return html`<p class="boot">Loading the AgentMesh console…</p>`
  if (session === undefined) {
    return html`<${SignIn} error=${state.error} onSignedIn=${(s: Session) => { setCsrf(s.csrf); setSession(s) }} />`
  }
  const signOut = async (): Promise<void> => {
    try { await api('api/signout', { method: 'POST' }) } catch { /* signed out either way */ }
    setSession(undefined)
    setState({ loading: false })
  }
  return html`<${Shell} session=${session} onSignOut=${signOut} />`
}

const root = document.getElementById('app')
if (root !== null) { root.textContent = ''; render(html`<${App} />`, root) }
