/**
 * "Sign in with <provider>" in a real browser (Chromium through playwright-core): the relay's
 * console with a real OpenID Connect provider (oidc-provider on 127.0.0.1). A mapped subject clicks
 * the button, signs in on the provider's own form and lands in the console as a warden; an unmapped
 * one is kept out. docs/protocol.md §28.3.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, Page } from 'playwright-core'
import type { Relay } from '@agentmesh/server'
import { freePort, startRelay } from '@agentmesh/testing'
import { startOidcProvider, type TestProvider } from '@agentmesh/testing/oidc'
import { browserMissing, ensureDashboardBuilt, launchBrowser, screenshot } from './browser.ts'

const WAIT = { timeout: 20_000 }

describe('relay console: sign in with the provider (browser)', { skip: browserMissing() }, () => {
  let relay: Relay
  let provider: TestProvider
  let browser: Browser

  before(async () => {
    await ensureDashboardBuilt()
    const port = await freePort()
    provider = await startOidcProvider({ port: await freePort(), redirectUris: [`http://127.0.0.1:${port}/dashboard/api/oidc/callback`] })
    relay = await startRelay({
      host: '127.0.0.1', port, apiKey: 'console-oidc-browser-key-0123456789',
      oidcIssuer: provider.issuer, oidcClientId: provider.clientId, oidcClientSecret: provider.clientSecret,
      oidcRoles: { subjects: { wendy: 'warden' }, groups: {} },
    })
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    await relay?.close()
    await provider?.close()
  })

  async function signIn (login: string): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
    await page.goto(relay.url + '/dashboard/')
    const button = await page.waitForSelector('#signin-oidc', WAIT)
    assert.equal(await button.innerText(), `Sign in with ${new URL(provider.issuer).host}`)
    if (login === 'wendy') await screenshot(page, 'signin-provider')
    await button.click()
    // the provider's own login form, then its consent
    await page.waitForSelector('input[name=login]', WAIT)
    await page.fill('input[name=login]', login)
    await page.fill('input[name=password]', 'any')
    await page.click('button[type=submit]')
    await page.waitForSelector('button[type=submit] >> text=Continue', WAIT)
    await page.click('button[type=submit]')
    return page
  }

  it('console - a mapped subject clicks "Sign in with <provider>" and lands in the console as warden', async () => {
    const page = await signIn('wendy')
    await page.waitForSelector('a[data-tab=chat][aria-selected=true]', WAIT)
    assert.match(await page.innerText('.me .who'), /warden/)
    await screenshot(page, 'signin-oidc')
    const session = await page.evaluate(async () => await (await fetch('/dashboard/api/session')).json()) as { principal: { role: string, person: { subject: string } } }
    assert.equal(session.principal.role, 'warden')
    assert.equal(session.principal.person.subject, 'wendy')
  })

  it('console - an unmapped subject is kept out (403 AM_ERR_FORBIDDEN)', async () => {
    const page = await signIn('mallory')
    await page.waitForFunction(() => document.body.innerText.includes('AM_ERR_FORBIDDEN'), undefined, WAIT)
    const status = await page.evaluate(async () => (await fetch('/dashboard/api/session')).status)
    assert.equal(status, 401)
  })
})

declare const document: { body: { innerText: string } }
