/**
 * Certificate chains published to the registry and the CRLs the relay holds (docs/protocol.md
 * §13.1), against real relays on free ports: tiers from chains, each refusal with its own code and
 * nothing stored, CRLs that drop a published agent to anonymous, and trust roots as relay options.
 */
import { after, before, describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  createCrl, createIdentity, createRootCa, issueAgentCert, issueOrgCa, issueSessionCert, selfSignAgentCert, signRequest,
  type CertificateAuthority, type Identity, type IssuedCertificate,
} from '@agentmesh/crypto'
import { loadTrustRoots, relayOptions, type Relay, type RelayInit } from '@agentmesh/server'
import { startRelay, tempDir } from '@agentmesh/testing'

type Json = Record<string, any>
const DAY = 86_400_000

async function start (t: TestContext, init: RelayInit = {}, now?: () => number): Promise<Relay> {
  const relay = await startRelay(init, now === undefined ? {} : { now })
  t.after(async () => { await relay.close() })
  return relay
}

/** A request as an agent makes it: signed by `who` when given. */
async function call (relay: Relay, who: Identity | undefined, method: string, path: string, body?: unknown): Promise<{ status: number, json: Json }> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (who !== undefined) Object.assign(headers, signRequest(who, method, path, text))
  const res = await fetch(relay.url + path, { method, headers, ...(text === '' ? {} : { body: text }) })
  return { status: res.status, json: await res.json() as Json }
}

const publish = async (relay: Relay, who: Identity, chain: readonly string[], as: Identity = who): Promise<{ status: number, json: Json }> =>
  await call(relay, as, 'PUT', `/api/v1/agents/${who.amid}/certificate`, { chain })

async function putCrl (relay: Relay, pem: string): Promise<{ status: number, json: Json }> {
  const res = await fetch(relay.url + '/api/v1/crls', { method: 'PUT', headers: { 'content-type': 'application/x-pem-file' }, body: pem })
  return { status: res.status, json: await res.json() as Json }
}

function expectError (r: { status: number, json: Json }, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.json))
  assert.equal(r.json.error?.code, code, JSON.stringify(r.json))
  if (message !== undefined) assert.match(r.json.error.message, message)
}

/** What the registry says about an agent: its profile and its certificate (status and body). */
async function snapshot (relay: Relay, amid: string): Promise<Json> {
  const profile = await call(relay, undefined, 'GET', `/api/v1/agents/${amid}`)
  const cert = await call(relay, undefined, 'GET', `/api/v1/agents/${amid}/certificate`)
  return { profile, cert }
}

let root: CertificateAuthority
let acme: CertificateAuthority
let globex: CertificateAuthority
let stranger: CertificateAuthority
/** A root of the same name as `root` with another key: it must never answer for `root`. */
let impostor: CertificateAuthority

before(async () => {
  root = await createRootCa({ name: 'AgentMesh Test Root' })
  acme = await issueOrgCa(root, { org: 'Acme' })
  globex = await issueOrgCa(root, { org: 'Globex' })
  stranger = await createRootCa({ name: 'Untrusted Root' })
  impostor = await createRootCa({ name: 'AgentMesh Test Root' })
})

describe('certificates - publishing chains', () => {
  it('certificates - a chain issued by a trusted root gives the verified tier, on the profile, in search and on the certificate', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const alice = createIdentity()
    assert.equal((await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'Alice', capabilities: [{ id: 'translate', name: 'T' }] })).status, 200)
    const cert = await issueAgentCert(root, { amid: alice.amid, tier: 'verified' })

    const put = await publish(relay, alice, cert.chainPem)
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.deepEqual(put.json, {
      amid: alice.amid, chain: cert.chainPem, status: 'valid', tier: 'verified', expires_at: cert.notAfter.getTime(), published_at: put.json.published_at,
    })
    assert.equal(typeof put.json.published_at, 'number')
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}/certificate`)).json, put.json)

    const profile = (await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json
    assert.equal(profile.tier, 'verified')
    assert.equal(profile.cert_status, 'valid')
    assert.equal(profile.cert_expires_at, cert.notAfter.getTime())
    assert.equal('organisation' in profile, false)
    const found = (await call(relay, undefined, 'GET', '/api/v1/agents?capability=translate')).json.agents as Json[]
    assert.deepEqual(found.map(a => [a.amid, a.tier]), [[alice.amid, 'verified']])
    assert.equal((await relay.store.getProfile(alice.amid))?.tier, 'verified', 'the stored profile records the tier of the last chain')
  })

  it('certificates - an organisation chain gives the organisation tier and names it; the root may be included', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const alice = createIdentity()
    const bob = createIdentity()
    const a = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })
    const b = await issueAgentCert(globex, { amid: bob.amid, tier: 'verified' })
    const put = await publish(relay, alice, a.chainPem)
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.equal(put.json.tier, 'organisation')
    assert.equal(put.json.organisation, 'Acme')
    const withRoot = await publish(relay, bob, [...b.chainPem, root.certPem])
    assert.equal(withRoot.status, 200, JSON.stringify(withRoot.json))
    assert.equal(withRoot.json.organisation, 'Globex')
    assert.equal(withRoot.json.chain.length, 3)
    // an agent that only published a certificate (no profile) has the tier on its minimal profile too
    const profile = (await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json
    assert.deepEqual({ ...profile, updated_at: 0 }, {
      amid: alice.amid, capabilities: [], tier: 'organisation', organisation: 'Acme', cert_status: 'valid', cert_expires_at: a.notAfter.getTime(), updated_at: 0,
    })
  })

  it('certificates - a self-signed certificate is anonymous; without trust roots a CA-issued chain is refused', async (t) => {
    const relay = await start(t)
    const alice = createIdentity()
    const self = await selfSignAgentCert(alice)
    const put = await publish(relay, alice, self.chainPem)
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.equal(put.json.status, 'valid')
    assert.equal(put.json.tier, 'anonymous')
    const before = await snapshot(relay, alice.amid)
    expectError(await publish(relay, alice, (await issueAgentCert(root, { amid: alice.amid, tier: 'verified' })).chainPem),
      422, ErrorCode.CertChainBroken, /^certificate 0 .*neither the next certificate in the chain nor a trusted root/)
    assert.deepEqual(await snapshot(relay, alice.amid), before)
  })

  it('certificates - refused chains each answer their own code, and leave the stored profile and chain as they were', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const alice = createIdentity()
    const bob = createIdentity()
    assert.equal((await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'Alice' })).status, 200)
    const good = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })
    assert.equal((await publish(relay, alice, good.chainPem)).status, 200)
    const before = await snapshot(relay, alice.amid)
    assert.equal(before.profile.json.tier, 'organisation')
    const unchanged = async (what: string): Promise<void> => { assert.deepEqual(await snapshot(relay, alice.amid), before, `${what} changed nothing`) }

    // expired: issued three days ago for one day
    const expired = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified', validityDays: 1, now: new Date(Date.now() - 3 * DAY) })
    expectError(await publish(relay, alice, expired.chainPem), 422, ErrorCode.CertExpired, /^certificate 0 \(CN=am\w+, O=Acme\): expired at /)
    await unchanged('an expired chain')

    // revoked: Acme's CRL lists the certificate (published before the chain)
    const revoked = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })
    assert.equal((await putCrl(relay, await createCrl(acme, [revoked.serial]))).status, 200)
    expectError(await publish(relay, alice, revoked.chainPem), 422, ErrorCode.CertRevoked, /^certificate 0 \(CN=am\w+, O=Acme\): was revoked by "CN=Acme CA, O=Acme"/)
    await unchanged('a revoked chain')

    // broken link: issued by Globex, presented with Acme's CA
    const globexCert = await issueAgentCert(globex, { amid: alice.amid, tier: 'verified' })
    expectError(await publish(relay, alice, [globexCert.certPem, acme.certPem]), 422, ErrorCode.CertChainBroken, /^certificate 0 .*names its issuer "CN=Globex CA, O=Globex"/)
    // the same name with another key: the signature link is what breaks
    const impostorOrg = await issueOrgCa(impostor, { org: 'Acme' })
    const forged = await issueAgentCert(impostorOrg, { amid: alice.amid, tier: 'verified' })
    expectError(await publish(relay, alice, forged.chainPem), 422, ErrorCode.CertChainBroken, /^certificate 1 \(CN=Acme CA, O=Acme\): its signature does not verify/)
    await unchanged('a broken chain')

    // garbage
    expectError(await publish(relay, alice, ['hello, I am a certificate']), 422, ErrorCode.CertInvalid, /^certificate 0: chain\[0\] is not a PEM certificate/)
    expectError(await publish(relay, alice, ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']), 422, ErrorCode.CertInvalid, /^certificate 0: cannot be parsed/)
    expectError(await publish(relay, alice, [good.certPem + acme.certPem]), 422, ErrorCode.CertInvalid, /exactly one PEM certificate, it holds 2/)
    const session = await issueSessionCert(alice, { sessionPublicKey: createIdentity().publicKey, agentChainPem: good.chainPem })
    expectError(await publish(relay, alice, session.chainPem), 422, ErrorCode.CertInvalid, /session certificate/)
    await unchanged('a garbage chain')

    // a chain for another AMID, and requests not signed by alice
    const bobs = await issueAgentCert(acme, { amid: bob.amid, tier: 'verified' })
    expectError(await publish(relay, alice, bobs.chainPem), 403, ErrorCode.Forbidden, new RegExp(`certifies ${bob.amid}, not ${alice.amid}`))
    expectError(await publish(relay, alice, good.chainPem, bob), 403, ErrorCode.Forbidden, /only am\w+ may change its records/)
    expectError(await call(relay, undefined, 'PUT', `/api/v1/agents/${alice.amid}/certificate`, { chain: good.chainPem }), 401, ErrorCode.NotAuthenticated)
    await unchanged('another agent\'s chain or an unsigned request')

    // bodies that do not match the schema
    expectError(await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}/certificate`, { chain: [] }), 400, ErrorCode.InvalidArgument, /chain/)
    expectError(await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}/certificate`, { chain: Array(5).fill(good.certPem) }), 400, ErrorCode.InvalidArgument, /chain/)
    expectError(await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}/certificate`, { pem: good.certPem }), 400, ErrorCode.InvalidArgument)
    await unchanged('a malformed body')
    assert.equal(await relay.store.getCertificate(bob.amid), undefined)
    expectError(await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/certificate`), 404, ErrorCode.NotFound, /published no certificate/)
  })

  it('certificates - a certificate that expires drops the agent to anonymous on read', async (t) => {
    // the registry's clock moves only when the test moves it
    const clock = { t: Date.now() }
    const relay = await start(t, { trustRoots: [root.certPem] }, () => clock.t)
    const alice = createIdentity()
    // valid for two seconds (X.509 times have second precision)
    const short = await issueAgentCert(root, { amid: alice.amid, tier: 'verified', validityDays: 2 / 86_400, now: new Date(clock.t) })
    const put = await publish(relay, alice, short.chainPem)
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.equal(put.json.tier, 'verified')
    clock.t = short.notAfter.getTime() + 1100
    const profile = (await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json
    assert.equal(profile.tier, 'anonymous')
    assert.equal(profile.cert_status, 'expired')
    const cert = (await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}/certificate`)).json
    assert.equal(cert.status, 'expired')
    assert.equal(cert.reason.code, ErrorCode.CertExpired)
    assert.match(cert.reason.message, /expired at/)
  })
})

describe('certificates - CRLs', () => {
  it('certificates - a CRL revoking a published chain drops that agent to anonymous and no one else', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const alice = createIdentity()
    const bob = createIdentity()
    const a = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })
    const b = await issueAgentCert(acme, { amid: bob.amid, tier: 'verified' })
    assert.equal((await publish(relay, alice, a.chainPem)).status, 200)
    assert.equal((await publish(relay, bob, b.chainPem)).status, 200)
    assert.deepEqual((await call(relay, undefined, 'GET', '/api/v1/crls')).json, { crls: [] })

    const crlPem = await createCrl(acme, [a.serial])
    const put = await putCrl(relay, crlPem)
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.equal(put.json.status, 'stored')
    assert.deepEqual(Object.keys(put.json.crl).sort(), ['issuer', 'issuer_key', 'next_update', 'pem', 'revoked_count', 'stored_at', 'this_update'])
    assert.equal(put.json.crl.issuer, 'CN=Acme CA, O=Acme')
    assert.equal(put.json.crl.revoked_count, 1)
    assert.equal(put.json.crl.pem, crlPem)
    assert.deepEqual((await call(relay, undefined, 'GET', '/api/v1/crls')).json, { crls: [put.json.crl] })

    const profile = (await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json
    assert.equal(profile.tier, 'anonymous')
    assert.equal(profile.cert_status, 'revoked')
    assert.equal('organisation' in profile, false)
    const cert = (await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}/certificate`)).json
    assert.equal(cert.status, 'revoked')
    assert.equal(cert.tier, 'anonymous')
    assert.equal(cert.reason.code, ErrorCode.CertRevoked)
    assert.match(cert.reason.message, new RegExp(`^certificate 0 \\(CN=${alice.amid}, O=Acme\\): was revoked by "CN=Acme CA, O=Acme"`))
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}`)).json.tier, 'organisation', 'bob is not on the list')

    // the same CRL again changes nothing
    const again = await putCrl(relay, crlPem)
    assert.equal(again.status, 200)
    assert.deepEqual(again.json, { status: 'unchanged', crl: put.json.crl })

    // the root revokes Acme's CA itself: bob drops too
    const rootCrl = await putCrl(relay, await createCrl(root, [acme.serial]))
    assert.equal(rootCrl.status, 200, JSON.stringify(rootCrl.json))
    const bobCert = (await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/certificate`)).json
    assert.equal(bobCert.status, 'revoked')
    assert.match(bobCert.reason.message, /^certificate 1 \(CN=Acme CA, O=Acme\): was revoked by "CN=AgentMesh Test Root"/)
    assert.deepEqual(((await call(relay, undefined, 'GET', '/api/v1/crls')).json.crls as Json[]).map(c => c.issuer), ['CN=Acme CA, O=Acme', 'CN=AgentMesh Test Root'])
  })

  it('certificates - a newer CRL replaces the older, and an older one is refused with AM_ERR_CRL_OUTDATED', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const alice = createIdentity()
    const a = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })
    assert.equal((await publish(relay, alice, a.chainPem)).status, 200)
    const old = await createCrl(acme, [a.serial], { now: new Date(Date.now() - 2 * DAY) })
    const newer = await createCrl(acme, [], { now: new Date(Date.now() - DAY) })
    assert.equal((await putCrl(relay, old)).status, 200)
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.tier, 'anonymous')
    // a newer list without alice: her certificate counts again (a CA may take back a suspension)
    assert.equal((await putCrl(relay, newer)).json.status, 'stored')
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.tier, 'organisation')
    const listed = (await call(relay, undefined, 'GET', '/api/v1/crls')).json
    expectError(await putCrl(relay, old), 409, ErrorCode.CrlOutdated, /the relay holds one issued .* and keeps it/)
    assert.deepEqual((await call(relay, undefined, 'GET', '/api/v1/crls')).json, listed, 'the newer CRL stays')
    assert.equal(listed.crls[0].pem, newer)
  })

  it('certificates - CRLs must be signed by a CA the relay knows, and be one readable PEM CRL of bounded size', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    // an organisation CA is known only once a chain it issued was published
    expectError(await putCrl(relay, await createCrl(acme, [])), 422, ErrorCode.CertChainBroken, /"CN=Acme CA, O=Acme" is not a CA this relay knows/)
    const alice = createIdentity()
    assert.equal((await publish(relay, alice, (await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })).chainPem)).status, 200)
    assert.equal((await putCrl(relay, await createCrl(acme, []))).status, 200)

    expectError(await putCrl(relay, await createCrl(stranger, [])), 422, ErrorCode.CertChainBroken, /"CN=Untrusted Root" is not a CA this relay knows/)
    // the trusted root's name, another key
    expectError(await putCrl(relay, await createCrl(impostor, [acme.serial])), 422, ErrorCode.CertInvalid, /not signed by the key of that CA/)
    expectError(await putCrl(relay, 'not a CRL'), 422, ErrorCode.CertInvalid, /not a PEM CRL/)
    expectError(await putCrl(relay, root.certPem), 422, ErrorCode.CertInvalid, /not a PEM CRL|exactly one PEM CRL/)
    expectError(await putCrl(relay, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'), 422, ErrorCode.CertInvalid, /cannot be parsed/)
    const future = await createCrl(root, [], { now: new Date(Date.now() + DAY) })
    expectError(await putCrl(relay, future), 422, ErrorCode.CertInvalid, /in the future/)
    expectError(await putCrl(relay, 'x'.repeat(300 * 1024)), 413, ErrorCode.BodyTooLarge, /CRLs take at most 262144/)
    assert.deepEqual(((await call(relay, undefined, 'GET', '/api/v1/crls')).json.crls as Json[]).map(c => c.issuer), ['CN=Acme CA, O=Acme'])
    assert.equal((await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'A' })).json.tier, 'organisation', 'refused CRLs revoke nothing')
  })

  it('certificates - chains and CRLs survive a restart; a root no longer trusted leaves its chains untrusted', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const alice = createIdentity()
    const bob = createIdentity()
    const a = await issueAgentCert(acme, { amid: alice.amid, tier: 'verified' })
    const b = await issueAgentCert(root, { amid: bob.amid, tier: 'verified' })
    let relay = await startRelay({ dataDir: dir.path, trustRoots: [root.certPem] })
    assert.equal((await publish(relay, alice, a.chainPem)).status, 200)
    assert.equal((await publish(relay, bob, b.chainPem)).status, 200)
    assert.equal((await putCrl(relay, await createCrl(acme, [a.serial]))).status, 200)
    await relay.close()

    relay = await start(t, { dataDir: dir.path, trustRoots: [root.certPem] })
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.cert_status, 'revoked', 'the CRL index is rebuilt from the store')
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}`)).json.tier, 'verified')
    assert.equal((await call(relay, undefined, 'GET', '/api/v1/crls')).json.crls.length, 1)
    await relay.close()

    relay = await start(t, { dataDir: dir.path })
    const bobCert = (await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/certificate`)).json
    assert.equal(bobCert.status, 'untrusted')
    assert.equal(bobCert.tier, 'anonymous')
    assert.equal(bobCert.reason.code, ErrorCode.CertChainBroken)
  })
})

describe('certificates - trust roots as relay options', () => {
  const tmp = tempDir()
  after(() => { tmp.cleanup() })

  function expectConfig (fn: () => unknown, message: RegExp): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(AgentMeshError.is(err, ErrorCode.InvalidConfig), String(err))
      assert.match(err.message, message)
      return true
    })
  }

  it('certificates - trustRoots takes PEM texts, bundles split into one root each, duplicates dropped', () => {
    assert.deepEqual(relayOptions({ trustRoots: [root.certPem + stranger.certPem, root.certPem] }).trustRoots, [root.certPem, stranger.certPem])
    assert.deepEqual(relayOptions().trustRoots, [])
  })

  it('certificates - what is not a root CA certificate is refused naming the option and the certificate', async () => {
    const agent: IssuedCertificate = await issueAgentCert(root, { amid: createIdentity().amid, tier: 'verified' })
    expectConfig(() => relayOptions({ trustRoots: ['just text'] }), /^relay option trustRoots holds no PEM certificate/)
    expectConfig(() => relayOptions({ trustRoots: [acme.certPem] }), /^relay option trustRoots certificate 1 \(CN=Acme CA, O=Acme\) is not a root CA certificate \(it is an organisation CA; trust its root instead\)/)
    expectConfig(() => relayOptions({ trustRoots: [root.certPem, agent.certPem] }), /^relay option trustRoots \[1\] certificate 2 \(CN=am\w+\) is not a root CA certificate/)
    expectConfig(() => relayOptions({ trustRoots: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'] }), /^relay option trustRoots certificate 1 cannot be parsed/)
    expectConfig(() => relayOptions({ trustRoots: [root.privateKeyPem] }), /holds a "PRIVATE KEY" block/)
    expectConfig(() => relayOptions({ trustRoots: root.certPem as unknown as string[] }), /^relay option trustRoots must be a list of PEM texts/)
  })

  it('certificates - loadTrustRoots reads a PEM file; a missing or wrong file is AM_ERR_INVALID_CONFIG naming it', () => {
    const file = join(tmp.path, 'roots.pem')
    writeFileSync(file, `# our roots\n${root.certPem}\n${stranger.certPem}`)
    assert.deepEqual(loadTrustRoots(file), [root.certPem, stranger.certPem])
    const missing = join(tmp.path, 'nope.pem')
    expectConfig(() => loadTrustRoots(missing), new RegExp(`^trust roots file ${missing} does not exist$`))
    const wrong = join(tmp.path, 'wrong.pem')
    writeFileSync(wrong, acme.certPem)
    expectConfig(() => loadTrustRoots(wrong), new RegExp(`^trust roots file ${wrong} certificate 1 \\(CN=Acme CA, O=Acme\\) is not a root CA certificate`))
    expectConfig(() => loadTrustRoots(tmp.path), /^cannot read trust roots file .*: EISDIR$/)
  })
})
