/** htm over Preact: markup as tagged templates (every interpolation is escaped as text), and small shared pieces. */
import { h } from 'preact'
import htm from 'htm'

/** htm's typings do not resolve under NodeNext (a CommonJS default): typed here */
export const html: (strings: TemplateStringsArray, ...values: any[]) => any = (htm as any).bind(h)

export function shortAmid (amid: unknown): string {
  const s = typeof amid === 'string' ? amid : ''
  return s.length > 16 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s
}

/** `@handle` when known, else the AMID shortened. */
export function who (amid: unknown, handle?: unknown): string {
  if (typeof handle === 'string' && handle !== '') return '@' + handle
  if (amid === 'operator' || amid === 'relay') return String(amid)
  return shortAmid(amid)
}

export function time (ms: unknown): string {
  const n = Number(ms)
  if (!Number.isFinite(n) || n <= 0) return '—'
  const d = new Date(n)
  const today = new Date()
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

export function ago (ms: unknown): string {
  const n = Number(ms)
  if (!Number.isFinite(n) || n <= 0) return 'never'
  const s = Math.max(0, Math.round((Date.now() - n) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}

export function bytes (n: unknown): string {
  const v = Number(n)
  if (!Number.isFinite(v)) return '—'
  if (v < 1024) return `${v} B`
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KB`
  return `${(v / 1024 / 1024).toFixed(1)} MB`
}

/** Any value as one line of text (agent-written JSON included): never markup. */
export function text (v: unknown, max = 400): string {
  const s = typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v)
  return s.length > max ? s.slice(0, max) + '…' : s
}

export function Empty ({ title, hint }: { title: string, hint?: string }): any {
  return html`<div class="empty"><p class="empty-title">${title}</p>${hint === undefined ? null : html`<p class="empty-hint">${hint}</p>`}</div>`
}

export function ErrorLine ({ error }: { error: unknown }): any {
  if (error === undefined || error === null) return null
  const e = error as { code?: string, message?: string }
  return html`<p class="error" role="alert">${e.message ?? String(error)}${e.code === undefined ? '' : html` <code>${e.code}</code>`}</p>`
}

export function Badge ({ kind, label }: { kind: string, label?: string }): any {
  return html`<span class=${'badge badge-' + String(kind).replace(/[^a-z_-]/gi, '')}>${label ?? kind}</span>`
}

export function Dot ({ status }: { status: string }): any {
  const s = String(status).replace(/[^a-z]/gi, '')
  return html`<span class=${'dot dot-' + s} title=${s} aria-label=${s}></span>`
}

/** A padlock (end-to-end encrypted), drawn: no emoji font needed. */
export function Lock (): any {
  return html`<svg class="lock" viewBox="0 0 16 16" width="12" height="12" role="img" aria-label="end-to-end encrypted"><title>end-to-end encrypted</title><path d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z" fill="currentColor" /></svg>`
}
