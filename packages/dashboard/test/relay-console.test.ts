/**
 * The relay's console in a real browser (Chromium through playwright-core) against a real relay
 * (createRelay on 127.0.0.1) with real SDK agents: sign in (a wrong key refused), click room alpha,
 * send a message and see it; an agent's message, presence, a /status task and an update's adoption
 * arrive without a reload; markup an agent wrote renders as text and does not run. Screenshots of
 * every main screen go to the artifacts directory (browser.ts).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, Page } from 'playwright-core'
import type { Relay } from '@agentmesh/server'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { chat, connect, memoryState, tasks, updates, type Connection } from '@agentmesh/client'
import { cli, startRelay, tempDir } from '@agentmesh/testing'
import { browserMissing, ensureDashboardBuilt, launchBrowser, screenshot } from './browser.ts'

// what the page's functions (page.evaluate, waitForFunction) use: they run in the browser
declare const document: { cookie: string, querySelector (s: string): { textContent: string | null } | null, querySelectorAll (s: string): { length: number } }
declare const window: Record<string, unknown>

const KEY = 'console-test-operator-key-0123456789'
const WAIT = { timeout: 20_000 }
const missing = browserMissing()

describe('relay console (browser)', { skip: missing }, () => {
  let relay: Relay
  let browser: Browser
  let page: Page
  const conns: Connection[] = []
  const ids: Record<string, Identity> = {}
  const open = async (name: string): Promise<Connection> => {
    ids[name] ??= createIdentity(name)
    const c = await connect({ server: relay.url, identity: ids[name]!, state: memoryState() })
    conns.push(c)
    return c
  }
  const operator = async (path: string, body: unknown): Promise<any> => {
    const res = await fetch(relay.url + path, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const text = await res.text()
    assert.ok(res.ok, `${path}: ${res.status} ${text}`)
    return JSON.parse(text)
  }
  const tab = async (id: string): Promise<void> => { await page.click(`a[data-tab=${id}]`) }

  before(async () => {
    await ensureDashboardBuilt()
    relay = await startRelay({ apiKey: KEY, host: '127.0.0.1' })
    browser = await launchBrowser()
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
  })
  after(async () => {
    for (const c of conns) await c.close().catch(() => {})
    await browser?.close()
    await relay?.close()
  })

  it('console - a wrong key is refused; the operator key signs in to the Chat tab', async () => {
    await page.goto(relay.url + '/dashboard')
    assert.equal(new URL(page.url()).pathname, '/dashboard/')
    await page.fill('#signin-key', 'not-the-key')
    await page.click('button[type=submit]')
    const err = await page.waitForSelector('.error', WAIT)
    assert.match(await err.innerText(), /not this relay's operator key.*AM_ERR_AUTH_FAILED/s)
    await screenshot(page, 'signin')
    await page.fill('#signin-key', KEY)
    await page.click('button[type=submit]')
    await page.waitForSelector('a[data-tab=chat][aria-selected=true]', WAIT)
    assert.equal(await page.innerText('.me .who'), 'operator · master')
    // the cookie is HttpOnly: the page's script cannot read it
    assert.equal(await page.evaluate(() => document.cookie), '')
  })

  it('console - click room alpha, send a message, see it; an agent\'s message appears without reload', async () => {
    const alice = await open('alice')
    await chat(alice).setHandle('alice')
    await chat(alice).createRoom({ id: 'alpha', topic: 'the first room' })
    const bob = await open('bob')
    await chat(bob).setHandle('bob')
    await chat(bob).join('alpha')
    await page.reload()
    await page.click('a[data-room=alpha]', WAIT)
    await page.waitForSelector('text=the first room', WAIT)
    await page.fill('#composer-input', 'hello agents, from the console')
    await page.keyboard.press('Enter')
    await page.waitForSelector('.msg .body >> text=hello agents, from the console', WAIT)
    // the agents read what the console posted: it is in the room's history
    const h = await chat(bob).history('alpha')
    assert.ok(h.messages.some(m => m.text === 'hello agents, from the console'))
    await chat(alice).say('alpha', 'hi operator, alice here')
    await page.waitForSelector('.msg .body >> text=hi operator, alice here', WAIT)
    const bodies = await page.$$eval('.timeline .msg .body', els => els.map(e => e.textContent))
    assert.deepEqual(bodies.slice(-2), ['hello agents, from the console', 'hi operator, alice here'])
    // a message sent from the CLI (`agentmesh chat --room alpha --msg …`) appears without reload too
    const home = tempDir()
    try {
      const init = await cli(['init', '--name', 'dave'], { home: home.path, server: relay.url })
      assert.equal(init.code, 0, init.stderr)
      const join = await cli(['room', 'join', 'alpha'], { home: home.path, server: relay.url })
      assert.equal(join.code, 0, join.stderr)
      const said = await cli(['chat', '--room', 'alpha', '--msg', 'dave here, from the CLI'], { home: home.path, server: relay.url })
      assert.equal(said.code, 0, said.stderr)
      await page.waitForSelector('.msg .body >> text=dave here, from the CLI', WAIT)
    } finally {
      home.cleanup()
    }
    // typing, told live
    await chat(alice).typing('alpha')
    await page.waitForSelector('.typing >> text=@alice is typing…', WAIT)
    // the operator sets the topic from the console: the header and the timeline's notice show it
    await page.click('.room-tools >> text=Topic')
    await page.fill('#room-tool', 'launch day')
    await page.click('.room-tools button[type=submit]')
    await page.waitForSelector('.topic >> text=launch day', WAIT)
    await page.waitForSelector('.event.notice >> text=topic: launch day', WAIT)
    assert.equal((await chat(bob).room('alpha')).topic, 'launch day')
  })

  it('console - markup an agent wrote is shown as text and does not run', async () => {
    const alice = conns[0]!
    const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold?</b>'
    await chat(alice).say('alpha', hostile)
    await page.waitForFunction((t) => document.querySelector('.msg:last-child .body')?.textContent === t, hostile, WAIT)
    assert.equal(await page.innerText('.msg:last-child .body'), hostile)
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined)
    assert.equal(await page.$$eval('.timeline img, .timeline script, .timeline b', els => els.length), 0)
    await screenshot(page, 'chat')
  })

  it('console - a private room shows as metadata: its messages are sealed, their text never reaches the page', async () => {
    const [alice, bob] = [conns[0]!, conns[1]!]
    // stored as the members' sender-key ciphertext (e2ee.group): the SDK's tests show members read it
    await chat(alice).createRoom({ id: 'secret', kind: 'private' })
    await chat(alice).invite('secret', ids.bob!.amid)
    await chat(bob).join('secret')
    await chat(alice).say('secret', 'the relay cannot read this')
    await page.reload()
    await page.click('a[data-room=secret]', WAIT)
    await page.waitForSelector('.event.sealed', WAIT)
    assert.match(await page.innerText('.timeline'), /end-to-end encrypted: the relay cannot read it/)
    assert.ok(!(await page.content()).includes('the relay cannot read this'))
    await page.click('a[data-room=alpha]')
  })

  it('console - presence turns online and offline as an agent connects and disconnects', async () => {
    const carol = await open('carol')
    await chat(carol).setHandle('carol')
    const amid = ids.carol!.amid
    await page.waitForSelector(`.presence-list li[data-amid="${amid}"][data-status=online]`, WAIT)
    await carol.close()
    await page.waitForSelector(`.presence-list li[data-amid="${amid}"][data-status=offline]`, WAIT)
  })

  it('console - a task dispatched with /status shows its states in the timeline', async () => {
    const [alice, bob] = [conns[0]!, conns[1]!]
    await chat(bob).setHandle('worker-b')
    await tasks(bob).onCommand('status', (t) => `all good (${t.args})`)
    void (async () => { for await (const _ of bob.messages()) { /* b's loop runs the task */ } })().catch(() => {})
    await page.click('a[data-room=global]')
    await chat(alice).say('global', '/status now')
    await page.waitForSelector('.event.task[data-state=completed]', WAIT)
    const states = await page.$$eval('.event.task', els => els.map(e => e.getAttribute('data-state')))
    assert.deepEqual(states, ['submitted', 'working', 'completed'])
    assert.match(await page.innerText('.event.task[data-state=completed]'), /all good \(now\)/)
  })

  it('console - an update\'s adoption count rises as agents acknowledge', async () => {
    const { updateId } = await operator('/api/v1/updates', { version: '2.0.0', updateType: 'feature', title: 'Polls in rooms' })
    await tab('ops')
    const completed = `[data-update="${updateId}"] [data-count=completed] b`
    await page.waitForSelector(completed, WAIT)
    assert.equal(await page.innerText(completed), '0')
    await updates(conns[0]!).acknowledge(updateId, 'completed', { agentVersion: '2.0.0' })
    await page.waitForFunction((s) => document.querySelector(s)?.textContent === '1', completed, WAIT)
    await updates(conns[1]!).acknowledge(updateId, 'accepted')
    await page.waitForFunction((s) => document.querySelector(s)?.textContent === '1', `[data-update="${updateId}"] [data-count=accepted] b`, WAIT)
    // a catastrophe event appears with its status and its recovery protocol's steps
    await operator('/api/v1/catastrophe', { eventType: 'network_partition', severity: 'major', title: 'eu-west unreachable' })
    await page.waitForSelector('.cat >> text=eu-west unreachable', WAIT)
    await page.click('.cat summary')
    assert.ok((await page.$$('.cat ol li')).length >= 2, 'the protocol\'s steps')
    await screenshot(page, 'ops')
  })

  it('console - Fleet, Audit (verify chain) and Relay screens', async () => {
    await tab('fleet')
    await page.waitForSelector(`tr[data-amid="${ids.alice!.amid}"]`, WAIT)
    assert.ok((await page.$$('tbody tr')).length >= 3)
    await page.fill('#fleet-search', 'alice')
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, undefined, WAIT)
    await page.fill('#fleet-search', '')
    await screenshot(page, 'fleet')
    // an agent's page: profile (tier), reputation, health history
    await page.click(`tr[data-amid="${ids.alice!.amid}"] button.link`)
    await page.waitForSelector('.agent-page h2 >> text=Reputation', WAIT)
    assert.match(await page.innerText('.agent-page'), /Tier\s+anonymous/)
    await page.click('text=← All agents')
    await tab('audit')
    await page.waitForSelector('table.audit tbody tr', WAIT)
    await page.click('#verify-chain')
    const result = await page.waitForSelector('#verify-result', WAIT)
    assert.match(await result.innerText(), /The chain verifies: \d+ rows/)
    assert.ok(await page.$('td >> text=console.signin') !== null, 'the sign-in is audited')
    await screenshot(page, 'audit')
    await tab('relay')
    await page.waitForSelector('.chart svg.spark', WAIT)
    await screenshot(page, 'relay')
  })

  it('console - works at phone width and in dark mode, and signs out', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await tab('chat')
    await page.click('a[data-room=alpha]')
    await page.waitForSelector('.msg .body >> text=hi operator, alice here', WAIT)
    await screenshot(page, 'phone')
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.setViewportSize({ width: 1280, height: 800 })
    await screenshot(page, 'dark')
    await page.emulateMedia({ colorScheme: 'light' })
    await page.setViewportSize({ width: 1280, height: 800 })
    await page.click('text=Sign out')
    await page.waitForSelector('#signin-key', WAIT)
    const res = await page.evaluate(async () => (await fetch('api/v1/rooms')).status)
    assert.equal(res, 401)
  })
})
