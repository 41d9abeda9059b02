/**
 * The owner's console in a real browser (Chromium through playwright-core, dash's launcher in
 * packages/dashboard/test/browser.ts) against a real relay and real SDK agents: the console opens
 * from its one-time link; a held knock accepted there gives the peer a grant; the peer's DM shows
 * its plaintext there, while the relay's own console cannot show it; markup a peer wrote stays
 * text. Screenshots go to the artifacts directory (docs/images with
 * AGENTMESH_SCREENSHOTS=docs).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, Page } from 'playwright-core'
import type { Relay } from '@agentmesh/server'
import { createIdentity, dmRoomId } from '@agentmesh/crypto'
import { chat, connect, memoryState, type Connection } from '@agentmesh/client'
import { startRelay, waitFor } from '@agentmesh/testing'
import { browserMissing, ensureDashboardBuilt, launchBrowser, screenshot } from '../../dashboard/test/browser.ts'
import { startOwnerConsole, type OwnerConsole } from '../src/dashboard/server.ts'

const KEY = 'owner-console-test-operator-key-0123456789'
const WAIT = { timeout: 10_000 }
const missing = browserMissing()

describe('owner console (browser)', { skip: missing }, () => {
  let relay: Relay
  let browser: Browser
  let page: Page
  let ownerConsole: OwnerConsole
  let owner: Connection
  let alice: Connection
  const aliceId = createIdentity('alice')
  const ownerId = createIdentity('owner')
  const conns: Connection[] = []
  const secret = `the shipment leaves at dawn ${Math.random().toString(36).slice(2, 8)}`

  before(async () => {
    await ensureDashboardBuilt()
    relay = await startRelay({ apiKey: KEY, host: '127.0.0.1' })
    owner = await connect({ server: relay.url, identity: ownerId, state: memoryState(), policy: { version: 1, default_action: 'hold' } })
    alice = await connect({ server: relay.url, identity: aliceId, state: memoryState(), deliver: false })
    conns.push(owner, alice)
    await chat(owner).setHandle('owner')
    await chat(alice).setHandle('alice')
    ownerConsole = await startOwnerConsole({ conn: owner })
    browser = await launchBrowser()
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
  })
  after(async () => {
    await ownerConsole?.close()
    for (const c of conns) await c.close().catch(() => {})
    await browser?.close()
    await relay?.close()
  })

  it('owner console - opens from its one-time link as the agent; the link does not work twice', async () => {
    const link = ownerConsole.loginUrl()
    await page.goto(link)
    assert.equal(new URL(page.url()).pathname, '/dashboard/')
    await page.waitForSelector('a[data-tab=chat][aria-selected=true]', WAIT)
    assert.match(await page.innerText('.brand'), /owner console/)
    assert.equal(await page.innerText('.me .who'), '@owner')
    assert.equal(await page.evaluate(() => (globalThis as any).document.cookie), '', 'the session cookie is HttpOnly')
    // the same link in a fresh browser context: refused
    const other = await (await browser.newContext()).newPage()
    const r = await other.goto(link)
    assert.equal(r?.status(), 401)
    await other.context().close()
  })

  it('owner console - a held knock accepted in the console gives the peer a grant', async () => {
    await alice.knock(owner.amid, { category: 'question', summary: 'may I ask about the shipment?' })
    await page.click('a[data-tab=knocks]')
    const card = await page.waitForSelector('li.knock', WAIT)
    assert.match(await card.innerText(), /@alice[\s\S]*question: may I ask about the shipment\?/)
    await screenshot(page, 'owner-knocks')
    await page.click('li.knock button.primary')
    await waitFor(() => alice.grants().received.some(g => g.grantor === owner.amid), 'alice to hold a grant from the owner')
    await page.waitForSelector('text=No knocks waiting', WAIT)
    await page.click('a[data-tab=grants]')
    await page.waitForSelector(`tr[data-grant="${aliceId.amid}"]`, WAIT)
  })

  it('owner console - the peer\'s DM shows its plaintext, live, which the relay\'s console cannot show; markup stays text', async () => {
    await page.click('a[data-tab=chat]')
    await alice.send(owner.amid, { text: secret })
    const conv = `a[data-conversation="dm:${aliceId.amid}"]`
    await page.waitForSelector(conv, WAIT)
    await page.click(conv)
    await page.waitForSelector(`.msg .body >> text=${secret}`, WAIT)
    const hostile = '<img src=x onerror="window.__pwned=1"><b>bold?</b>'
    await alice.send(owner.amid, { text: hostile })
    // (functions, not strings: the console's CSP refuses eval; globalThis: the type check has no DOM)
    await page.waitForFunction((t) => [...(globalThis as any).document.querySelectorAll('.msg .body')].some((e: any) => e.textContent === t), hostile, WAIT)
    assert.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined)
    assert.equal(await page.$$eval('.timeline img, .timeline b', els => els.length), 0)
    // a reply from the console reaches alice, end to end encrypted
    await page.fill('#owner-composer', 'noted, thanks')
    await page.keyboard.press('Enter')
    await page.waitForSelector('.msg.out .body >> text=noted, thanks', WAIT)
    const bodies = await page.$$eval('.timeline .msg .body', els => els.map(e => e.textContent))
    assert.deepEqual(bodies, [secret, hostile, 'noted, thanks'])
    await screenshot(page, 'owner-chat')

    // the relay's console, signed in as the operator, cannot show it: DMs are not among its rooms,
    // and the relay's history of the DM conversation answers no content
    const relayPage = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
    try {
      await relayPage.goto(relay.url + '/dashboard/')
      await relayPage.fill('#signin-key', KEY)
      await relayPage.click('button[type=submit]')
      await relayPage.waitForSelector('a[data-tab=chat][aria-selected=true]', WAIT)
      await relayPage.waitForSelector('a[data-room=global]', WAIT)
      const room = dmRoomId(owner.amid, aliceId.amid)
      assert.equal(await relayPage.$(`a[data-room="${room}"]`), null)
      const shown = await relayPage.innerText('body')
      assert.equal(shown.includes(secret), false, 'the relay console shows no DM content')
      const res = await fetch(`${relay.url}/api/v1/rooms/${room}/history`, { headers: { 'x-api-key': KEY } })
      const text = await res.text()
      assert.equal(text.includes(secret), false, `the relay's history answers no DM content (${res.status})`)
    } finally {
      await relayPage.context().close()
    }
  })

  it('owner console - safety log, tasks, files and health screens', async () => {
    await page.click('a[data-tab=safety]')
    await page.waitForSelector('text=knock_held', WAIT)
    assert.equal((await page.innerText('.page')).includes(secret), false, 'the safety log holds no content')
    await screenshot(page, 'owner-safety')
    await page.click('a[data-tab=health]')
    await page.waitForSelector('.panel h2', WAIT)
    await page.click('a[data-tab=files]')
    await page.waitForSelector('text=No files', WAIT)
  })
})
