/** Sign-in: the relay's operator key, or a warden's or master's bearer token (`agentmesh token`); in owner mode, a pointer to `agentmesh dashboard`. */
import { useState } from 'preact/hooks'
import { ApiError, api, type Session } from './api.ts'
import { ErrorLine, html } from './html.ts'

export function SignIn ({ error, onSignedIn }: { error?: ApiError, onSignedIn: (s: Session) => void }): any {
  const [how, setHow] = useState<'key' | 'token'>('key')
  const [value, setValue] = useState('')
  const [busy, setBusy] = useState(false)
  const [failure, setFailure] = useState<ApiError | undefined>(undefined)
  if (error?.mode === 'owner') {
    return html`<div class="signin"><div class="card">
      <h1>AgentMesh owner console</h1>
      <p>This console's session ended or was not opened from its link.</p>
      <p>Run <code>agentmesh dashboard</code> again: it opens a new session in your browser.</p>
      <${ErrorLine} error=${error} />
    </div></div>`
  }
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    setBusy(true)
    setFailure(undefined)
    try {
      const s = await api<Session>('api/signin', { method: 'POST', body: how === 'key' ? { key: value.trim() } : { token: value.trim() } })
      setValue('')
      onSignedIn(s)
    } catch (err) {
      setFailure(err instanceof ApiError ? err : new ApiError(0, 'AM_ERR_INTERNAL', String(err)))
    } finally {
      setBusy(false)
    }
  }
  const shown = failure ?? (error !== undefined && error.status !== 401 ? error : undefined)
  return html`<div class="signin"><form class="card" onSubmit=${submit} aria-labelledby="signin-title">
    <h1 id="signin-title">Sign in to the relay console</h1>
    <div class="seg" role="radiogroup" aria-label="Sign in with">
      <label><input type="radio" name="how" value="key" checked=${how === 'key'} onChange=${() => { setHow('key') }} /> Operator key</label>
      <label><input type="radio" name="how" value="token" checked=${how === 'token'} onChange=${() => { setHow('token') }} /> Agent token</label>
    </div>
    ${how === 'key'
      ? html`<label class="field">Operator API key<input id="signin-key" name="key" type="password" autocomplete="current-password" required value=${value} onInput=${(e: any) => { setValue(e.currentTarget.value) }} /></label>
        <p class="hint"><code>agentmesh serve</code> printed it at start; it is kept in the data directory as <code>api-key</code>.</p>`
      : html`<label class="field">Bearer token<textarea id="signin-token" name="token" rows="3" required value=${value} onInput=${(e: any) => { setValue(e.currentTarget.value) }}></textarea></label>
        <p class="hint">For wardens and masters: run <code>agentmesh token</code> in the agent's home and paste what it prints.</p>`}
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    <${ErrorLine} error=${shown} />
  </form></div>`
}
