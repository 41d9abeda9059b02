/**
 * The web console's figures (docs/protocol.md §22): the size of its JavaScript and CSS (raw and
 * gzip) and its time to first render in Chromium against an in-process relay on 127.0.0.1 — the
 * sign-in page, and the Chat tab of a signed-in operator with its rooms loaded. A figure, never an
 * assertion. BENCH_DASHBOARD=0 leaves it out; without Chromium only the sizes are reported.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { createRelay, silentLogger } from '@agentmesh/server'
import { dashboardDist } from '@agentmesh/dashboard'
import { round } from './util.ts'

const CHROMIUM = process.env.AGENTMESH_CHROMIUM ?? '/usr/bin/chromium'
const RUNS = 5

export interface DashboardResult {
  files: Record<string, { bytes: number, gzip_bytes: number }>
  /** median of RUNS page loads, ms from navigation start, a fresh browser context each */
  first_render_ms?: { signin: number, chat_signed_in: number, first_contentful_paint: number }
  note?: string
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return round(s[Math.floor(s.length / 2)]!, 1) }

export async function runDashboard (log: (s: string) => void): Promise<DashboardResult | undefined> {
  if (process.env.BENCH_DASHBOARD === '0') return undefined
  log('▶ dashboard')
  const dist = dashboardDist()
  const files: DashboardResult['files'] = {}
  for (const f of ['app.js', 'app.css', 'index.html']) {
    const p = join(dist, f)
    if (!existsSync(p)) return { files, note: 'the console is not built (npm run build)' }
    const b = readFileSync(p)
    files[f] = { bytes: b.byteLength, gzip_bytes: gzipSync(b, { level: 9 }).byteLength }
  }
  if (!existsSync(CHROMIUM)) return { files, note: `no Chromium at ${CHROMIUM}: sizes only` }
  const { chromium } = await import('playwright-core')
  const key = 'bench-console-key-0123456789'
  const relay = await createRelay({ port: 0, host: '127.0.0.1', apiKey: key }, { logger: silentLogger })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] })
  const signin: number[] = []
  const chat: number[] = []
  const fcp: number[] = []
  try {
    for (let i = 0; i < RUNS; i++) {
      const ctx = await browser.newContext()
      const page = await ctx.newPage()
      await page.goto(relay.url + '/dashboard/')
      await page.waitForSelector('#signin-key')
      signin.push(await page.evaluate(() => performance.now()))
      fcp.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0))
      await page.evaluate(async (k) => { await fetch('api/signin', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: k }) }) }, key)
      await page.reload()
      await page.waitForSelector('a[data-room=global]')
      chat.push(await page.evaluate(() => performance.now()))
      await ctx.close()
    }
  } finally {
    await browser.close()
    await relay.close()
  }
  const out: DashboardResult = { files, first_render_ms: { signin: median(signin), chat_signed_in: median(chat), first_contentful_paint: median(fcp) } }
  log(`  app.js ${files['app.js']!.bytes} B (${files['app.js']!.gzip_bytes} gzip), app.css ${files['app.css']!.bytes} B (${files['app.css']!.gzip_bytes} gzip); ` +
    `first render: sign-in ${out.first_render_ms!.signin} ms, signed-in Chat ${out.first_render_ms!.chat_signed_in} ms`)
  return out
}

export function dashboardReport (d: DashboardResult): string {
  const kb = (n: number): string => `${round(n / 1024, 1)} KB`
  const lines = ['web console (/dashboard/)', '| file | size | gzip |', '|---|---|---|']
  for (const [f, s] of Object.entries(d.files)) lines.push(`| ${f} | ${kb(s.bytes)} | ${kb(s.gzip_bytes)} |`)
  if (d.first_render_ms !== undefined) {
    lines.push('', `time to first render (Chromium, 127.0.0.1, median of ${RUNS}): sign-in page ${d.first_render_ms.signin} ms ` +
      `(first contentful paint ${d.first_render_ms.first_contentful_paint} ms), signed-in Chat tab with its rooms ${d.first_render_ms.chat_signed_in} ms`)
  }
  if (d.note !== undefined) lines.push(`(${d.note})`)
  return lines.join('\n')
}
