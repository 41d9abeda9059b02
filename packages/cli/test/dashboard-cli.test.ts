/**
 * `agentmesh dashboard` as a user runs it (a real process against a real relay process): with
 * --no-open --json it prints one JSON line with the sign-in URL, the link works once, and Ctrl-C
 * (SIGTERM) stops it cleanly; a host other than 127.0.0.1 is refused before anything starts.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { createInterface } from 'node:readline'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assertCliError, cli, cliProcess, spawnRelay, tempDir, type RelayProcess } from '@agentmesh/testing'

async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => { req.destroy(new Error('timeout')) })
    req.end()
  })
}

describe('agentmesh dashboard', () => {
  const dir = tempDir()
  let relay: RelayProcess
  let amid = ''
  before(async () => {
    relay = await spawnRelay({ memory: true })
    const r = await cli(['init', '--open', '--name', 'owner', '--json'], { home: dir.path, server: relay.url })
    assert.equal(r.code, 0, r.stderr)
    amid = (JSON.parse(r.lines[0]!) as { amid: string }).amid
  })
  after(async () => {
    await relay?.kill()
    dir.cleanup()
  })

  it('dashboard - --no-open --json prints the sign-in URL, which works once; SIGTERM stops it with exit 0', async () => {
    const child = cliProcess(['dashboard', '--no-open', '--json'], { home: dir.path, server: relay.url })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => { reject(new Error(`no URL printed: ${stderr}`)) }, 30_000)
        createInterface({ input: child.stdout! }).once('line', (l) => { clearTimeout(t); resolve(l) })
        void exited.then((c) => { clearTimeout(t); reject(new Error(`exited ${String(c)}: ${stderr}`)) })
      })
      const out = JSON.parse(line) as { url: string, console: string, amid: string, opened: boolean }
      assert.match(out.url, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/login\?token=[A-Za-z0-9_-]{43}$/)
      assert.equal(out.console, out.url.replace(/login\?token=.*$/, ''))
      assert.deepEqual([out.amid, out.opened], [amid, false])

      const first = await get(out.url)
      assert.equal(first.status, 303)
      const cookie = String(first.headers['set-cookie']).split(';')[0]!
      const second = await get(out.url)
      assert.equal(second.status, 401)
      assert.equal((JSON.parse(second.body) as { error: { code: string } }).error.code, 'AM_ERR_AUTH_FAILED')
      const session = await get(new URL('api/session', out.console).href, { cookie })
      assert.equal(session.status, 200, session.body)
      assert.equal((JSON.parse(session.body) as { principal: { amid: string } }).principal.amid, amid)
      // the web UI comes from the dashboard package, next to the CLI's bundle
      const page = await get(out.console)
      assert.equal(page.status, 200)
      assert.match(String(page.headers['content-type']), /^text\/html/)
      assert.match(page.body, /app\.js/)
      assert.match(String(page.headers['content-security-policy']), /default-src 'self'/)
    } finally {
      child.kill('SIGTERM')
    }
    assert.equal(await exited, 0, stderr)
    assert.equal(stderr, '', 'nothing on stderr in --json mode')
  })

  it('dashboard - without --no-open it starts the platform\'s opener (xdg-open here) on the sign-in link; a failing opener means the link is printed', { skip: process.platform === 'linux' ? false : 'the stand-in is an xdg-open script' }, async () => {
    const bin = join(dir.path, 'bin')
    mkdirSync(bin, { recursive: true })
    const seen = join(dir.path, 'opened.txt')
    // a stand-in for xdg-open that records the address it was asked to open
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${seen}'\n`, { mode: 0o755 })
    for (const [fails, expectOpened] of [[false, true], [true, false]] as const) {
      if (fails) writeFileSync(join(bin, 'xdg-open'), '#!/bin/sh\nexit 3\n', { mode: 0o755 })
      const child = cliProcess(['dashboard', '--json'], { home: dir.path, server: relay.url, env: { PATH: `${bin}:${process.env.PATH ?? ''}` } })
      const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
      try {
        const line = await new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => { reject(new Error('no line printed')) }, 30_000)
          createInterface({ input: child.stdout! }).once('line', (l) => { clearTimeout(t); resolve(l) })
        })
        const out = JSON.parse(line) as { url: string, opened: boolean }
        assert.equal(out.opened, expectOpened)
        if (expectOpened) assert.equal(readFileSync(seen, 'utf8'), out.url, 'the opener got the one-time link')
        assert.equal((await get(out.url)).status, 303, 'the printed link works')
      } finally {
        child.kill('SIGTERM')
      }
      assert.equal(await exited, 0)
    }
  })

  it('dashboard - refuses a host other than 127.0.0.1 or localhost, and a bad port', async () => {
    assertCliError(await cli(['dashboard', '--no-open', '--host', '0.0.0.0'], { home: dir.path, server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2, /127\.0\.0\.1 or localhost/)
    assertCliError(await cli(['dashboard', '--no-open', '--port', '70000'], { home: dir.path, server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2, /--port/)
  })
})
