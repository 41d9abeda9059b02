import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createIdentity, saveIdentity } from '@agentmesh/crypto'
import { chat, connect } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { policyApplied, tempDir, waitFor } from '@agentmesh/testing'
import { codes, readersHarness, type Reader } from './sdk-fixtures.ts'

const texts = (a: Reader): string[] => a.got.map(m => m.text ?? '')

describe('knock', () => {
  const dir = tempDir()
  const { start, agent, open, adopt } = readersHarness()
  after(() => { dir.cleanup() })

  it('knock - allow and deny lists match the sender\'s chat handle, in any case; the handle is in the provenance', async () => {
    const relay = await start()
    const [bob, alice, mallory, nobody] = ['bob', 'alice', 'mallory', 'nobody'].map(n => agent(n)) as [Reader, Reader, Reader, Reader]
    const [a, m, n] = await Promise.all([alice, mallory, nobody].map(async x => await open(relay, x)))
    await chat(a!).setHandle('Alice')
    await chat(m!).setHandle('mallory')
    const b = await open(relay, bob, {
      policy: { version: 1, default_action: 'reject', allow: { handles: ['alice', 'mallory'] }, deny: { handles: ['MALLORY'] }, deny_action: 'reject' },
    })
    await a!.knock(bob.id.amid, { category: 'question', summary: 'by handle' })
    await waitFor(() => a!.grants().received.length === 1, 'alice, allowed by her handle, to get a grant')
    await a!.send(bob.id.amid, { text: 'from a handle' })
    await waitFor(() => texts(bob).includes('from a handle'), 'alice\'s message')
    assert.equal(bob.got.find(x => x.text === 'from a handle')!.provenance?.handle, 'Alice')
    // deny wins over allow; no handle matches neither list
    await m!.knock(bob.id.amid, { category: 'question', summary: 'me too' })
    await n!.knock(bob.id.amid, { category: 'question', summary: 'and me' })
    await waitFor(() => m!.grants().received.length === 0 && n!.grants().received.length === 0 && b.safetyLog().filter(e => e.event === 'knock_rejected').length === 2, 'both knocks to be rejected')
    const rejected = b.safetyLog().filter(e => e.event === 'knock_rejected').map(e => [e.peer, e.detail])
    assert.ok(rejected.some(([peer, detail]) => peer === mallory.id.amid && /deny list: handle "mallory"/.test(String(detail))), JSON.stringify(rejected))
    assert.ok(rejected.some(([peer]) => peer === nobody.id.amid))
  })

  it('knock - a stranger\'s DM is refused; knocks are accepted by the allow list, held then accepted, rejected with a reason, rejected silently, or refused by intent', async () => {
    const relay = await start()
    const [bob, alice, carol, dave, erin, frank] = ['bob', 'alice', 'carol', 'dave', 'erin', 'frank'].map(n => agent(n)) as [Reader, Reader, Reader, Reader, Reader, Reader]
    const held: string[] = []
    const b = await open(relay, bob, {
      policy: {
        version: 1,
        default_action: 'hold',
        allow: { amids: [alice.id.amid] },
        deny: { amids: [dave.id.amid] },
        deny_action: 'silent',
        intents: { allowed: ['question', 'task'] },
      },
      onKnock: (k) => { held.push(k.id) },
    })
    const [a, c, d, e, f] = await Promise.all([alice, carol, dave, erin, frank].map(async x => await open(relay, x)))

    // no knock: bob's profile says he takes messages only from agents he granted, so the send
    // fails at carol's end with what to do, instead of being dropped at bob's
    await assert.rejects(c!.send(bob.id.amid, { text: 'hello?' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NoGrant) && e.message.includes(`knock first: agentmesh knock ${bob.id.amid}`))
    assert.deepEqual(c!.sent(), [], 'nothing was sent')
    assert.deepEqual(texts(bob), [])

    // alice is on the allow list: accepted at once, the grant comes back to her
    await a!.knock(bob.id.amid, { category: 'question', summary: 'may I ask about the weather?' })
    await waitFor(() => a!.grants().received.length === 1, 'alice to receive the grant')
    const grant = a!.grants().received[0]!
    assert.equal(grant.grantor, bob.id.amid)
    assert.deepEqual(grant.scopes, ['chat'])
    await a!.send(bob.id.amid, { text: 'is it raining?' })
    await waitFor(() => texts(bob).includes('is it raining?'), 'alice\'s message')
    const m = bob.got.find(x => x.text === 'is it raining?')!
    assert.equal(m.untrusted, true)
    assert.equal(m.provenance?.tier, 'anonymous')
    assert.equal(m.provenance?.grant?.id, grant.id)
    assert.deepEqual(m.provenance?.grant?.scopes, ['chat'])

    // carol knocks: held for the owner, then accepted; her message now arrives
    const ck = await c!.knock(bob.id.amid, { category: 'task', summary: 'translate a document', scopes: ['chat', 'command:translate'], duration_s: 3600 })
    await waitFor(() => held.includes(ck.id), 'carol\'s knock to be held')
    assert.deepEqual(b.knocks().map(k => [k.id, k.from, k.intent.summary]), [[ck.id, carol.id.amid, 'translate a document']])
    const g = await b.answerKnock(ck.id, 'accept', { scopes: ['chat'] })
    assert.equal(g?.grantee, carol.id.amid)
    assert.deepEqual(b.knocks(), [])
    await waitFor(() => c!.grants().received.length === 1, 'carol to receive the grant')
    await c!.send(bob.id.amid, { text: 'here is the document' })
    await waitFor(() => texts(bob).includes('here is the document'), 'carol\'s message')

    // dave is denied silently: no answer at all, and his messages stay refused
    await d!.knock(bob.id.amid, { category: 'question', summary: 'hi' })
    // erin asks for a category bob does not take: rejected with the reason
    await e!.knock(bob.id.amid, { category: 'negotiation', summary: 'a deal' })
    await waitFor(() => codes(erin).includes(ErrorCode.KnockRejected), 'erin to be told no')
    assert.match(erin.warnings.find(w => w.code === ErrorCode.KnockRejected)!.message, /negotiation/)
    // frank is held, then rejected by the owner with a reason
    const fk = await f!.knock(bob.id.amid, { category: 'question', summary: 'quick one' })
    await waitFor(() => held.includes(fk.id), 'frank\'s knock to be held')
    await b.answerKnock(fk.id, 'reject', { reason: 'busy this week' })
    await waitFor(() => codes(frank).includes(ErrorCode.KnockRejected), 'frank to be told no')
    assert.match(frank.warnings.find(w => w.code === ErrorCode.KnockRejected)!.message, /busy this week/)
    assert.deepEqual(codes(dave), [], 'a silent rejection says nothing')
    await assert.rejects(d!.send(bob.id.amid, { text: 'let me in' }), { code: ErrorCode.NoGrant })
    assert.deepEqual(d!.grants().received, [])
    assert.equal(texts(bob).includes('let me in'), false)
    assert.deepEqual(texts(bob), ['is it raining?', 'here is the document'])
    // the owner's safety log has every decision, by whom, and no message content
    const log = b.safetyLog()
    const events = (peer: Reader): string[] => log.filter(e => e.peer === peer.id.amid).map(e => e.event)
    assert.deepEqual(events(alice), ['knock_accepted'])
    assert.deepEqual(events(carol), ['knock_held', 'knock_answered'])
    assert.deepEqual(events(dave), ['knock_silent'])
    assert.deepEqual(events(erin), ['knock_rejected'])
    assert.deepEqual(events(frank), ['knock_held', 'knock_answered'])
    assert.match(log.find(e => e.peer === dave.id.amid)!.detail, /deny/)
    assert.equal(JSON.stringify(log).includes('is it raining'), false)
    assert.deepEqual(a!.safetyLog().map(e => e.event), ['grant_received'])
  })

  it('knock - a revoked or expired grant stops delivery; a flood passes whole, a loop trips the breaker, which recovers after the cooldown', async (t) => {
    // Date (not timers) is the test's: the cooldown and the grant's expiry pass when it ticks
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    const relay = await start()
    const [bob, alice, carol] = ['bob', 'alice', 'carol'].map(n => agent(n)) as [Reader, Reader, Reader]
    const b = await open(relay, bob, {
      policy: { version: 1, default_action: 'hold', allow: { amids: [alice.id.amid] }, breaker: { threshold: 5, window_s: 60, cooldown_s: 1 } },
    })
    // alice has a policy of her own: only those she granted, or knocked on, may write to her
    const a = await open(relay, alice, { policy: { version: 1, default_action: 'reject' } })
    const c = await open(relay, carol)
    await a.knock(bob.id.amid, { category: 'question', summary: 'hello' })
    await waitFor(() => a.grants().received.length === 1, 'alice\'s grant')

    // a flood one way: 8 messages at once, more than the threshold of 5, is no loop: all arrive
    for (let i = 0; i < 8; i++) await a.send(bob.id.amid, { text: `flood ${i}` })
    await waitFor(() => texts(bob).length === 8, 'the whole flood')
    assert.deepEqual(texts(bob), Array.from({ length: 8 }, (_, i) => `flood ${i}`))
    assert.deepEqual(codes(bob), [])
    // a loop: bob and alice answer each other at once. Turns at bob: the flood then ping 0 (1), pong 0
    // (2), ping 1 (3), pong 1 (4), ping 2 (5); pong 2 is the 6th and trips bob's breaker
    for (let i = 0; i < 2; i++) {
      await b.send(alice.id.amid, { text: `ping ${i}` })
      await waitFor(() => texts(alice).includes(`ping ${i}`), `ping ${i}`)
      await a.send(bob.id.amid, { text: `pong ${i}` })
      await waitFor(() => texts(bob).includes(`pong ${i}`), `pong ${i}`)
    }
    await b.send(alice.id.amid, { text: 'ping 2' })
    const tripping = await a.send(bob.id.amid, { text: 'pong 2' })
    // the message that tripped it is held back, not dropped, and the warning names it
    await waitFor(() => bob.warnings.some(w => w.code === ErrorCode.CircuitOpen && w.message.includes(`opened by message ${tripping.id}`)), 'the trip warning')
    assert.ok(bob.warnings.some(w => w.code === ErrorCode.CircuitOpen && w.message.includes(`held back message ${tripping.id}`)), JSON.stringify(bob.warnings.map(w => w.message)))
    // bob's next send fails, naming the peer; nothing was sent
    await assert.rejects(b.send(alice.id.amid, { text: 'ping 3' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.CircuitOpen) && e.message.includes(alice.id.amid))
    assert.equal(texts(bob).includes('pong 2'), false)
    t.mock.timers.tick(1100) // the cooldown
    await waitFor(() => texts(bob).includes('pong 2'), 'the held-back message after the cooldown')
    await a.send(bob.id.amid, { text: 'after the cooldown' })
    await waitFor(() => texts(bob).includes('after the cooldown'), 'delivery to resume')
    assert.deepEqual(texts(bob).slice(-4), ['pong 0', 'pong 1', 'pong 2', 'after the cooldown'])
    assert.equal(texts(alice).includes('ping 3'), false)
    // bob answers alice without knocking: she made the contact
    await b.send(alice.id.amid, { text: 'bob answers' })
    await waitFor(() => texts(alice).includes('bob answers'), 'bob\'s answer')
    assert.equal(alice.got.find(m => m.text === 'bob answers')!.provenance?.relation, 'contacted')
    // carol holds no grant from alice, whose profile says so: the send fails at carol's end
    await assert.rejects(c.send(alice.id.amid, { text: 'carol barges in' }), { code: ErrorCode.NoGrant })
    assert.equal(texts(alice).includes('carol barges in'), false)

    assert.deepEqual(b.safetyLog().filter(e => e.event === 'breaker_open').map(e => e.peer), [alice.id.amid], 'the trip is in the safety log')
    // revoked: alice is told, and her next send fails
    assert.equal(await b.revokeGrant(alice.id.amid), true)
    await waitFor(() => a.grants().received.length === 0, 'alice to drop the revoked grant')
    await assert.rejects(a.send(bob.id.amid, { text: 'after revocation' }), { code: ErrorCode.NoGrant })
    assert.equal(texts(bob).includes('after revocation'), false)

    // expired: carol's grant lasts one second
    const ck = await c.knock(bob.id.amid, { category: 'question', summary: 'brief' })
    await waitFor(() => b.knocks().length === 1, 'carol\'s knock held')
    await b.answerKnock(ck.id, 'accept', { durationS: 1 })
    await waitFor(() => c.grants().received.length === 1, 'carol\'s grant')
    await c.send(bob.id.amid, { text: 'in time' })
    await waitFor(() => texts(bob).includes('in time'), 'carol within the grant')
    t.mock.timers.tick(1100)
    await assert.rejects(c.send(bob.id.amid, { text: 'too late' }), { code: ErrorCode.NoGrant })
    assert.equal(texts(bob).includes('too late'), false)
    assert.equal(b.grants().issued.find(g => g.grantee === carol.id.amid)?.valid, false)
  })

  it('knock - the policy file applies without a restart; a broken file is AM_ERR_INVALID_POLICY and the old policy stays; bad knocks are refused', async () => {
    const relay = await start()
    const home = join(dir.path, 'bob-home')
    const bobId = createIdentity('bob')
    saveIdentity(home, bobId)
    const bob = agent('bob', bobId)
    const carol = agent('carol')
    const c = await open(relay, carol)
    // no policy file: bob is open
    const b = adopt(bob, await connect({ server: relay.url, home, onWarning: (w) => { bob.warnings.push(w) } }))
    await c.send(bobId.amid, { text: 'open door' })
    await waitFor(() => texts(bob).includes('open door'), 'a message to an open agent')
    assert.equal(bob.got[0]!.untrusted, true)
    // the owner writes a policy: from now on a grant is needed
    const applied = policyApplied(join(home, 'policy.json'))
    writeFileSync(join(home, 'policy.json'), JSON.stringify({ version: 1, default_action: 'reject' }))
    await applied
    await c.send(bobId.amid, { text: 'closed door' })
    await waitFor(() => codes(bob).includes(ErrorCode.NoGrant), 'the refusal under the new policy')
    // a broken edit: reported, the last valid policy stays in force
    writeFileSync(join(home, 'policy.json'), '{ "version": 1, "default_action": "maybe" }')
    await waitFor(() => codes(bob).includes(ErrorCode.InvalidPolicy), 'the broken policy to be reported', 6000)
    assert.match(bob.warnings.find(w => w.code === ErrorCode.InvalidPolicy)!.message, /default_action/)
    await c.knock(bobId.amid, { category: 'question', summary: 'still closed?' })
    await waitFor(() => codes(carol).includes(ErrorCode.KnockRejected), 'the old policy (reject) to answer')
    await b.close()
    bob.conn = undefined
    await bob.stop?.()
    // connecting with the broken file fails, naming the file and the field
    await assert.rejects(connect({ server: relay.url, home }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidPolicy) && /policy\.json/.test(e.message) && /default_action/.test(e.message))
    // a malformed knock is refused before it leaves
    await assert.rejects(c.knock(bobId.amid, { category: 'question', summary: '' }), { code: ErrorCode.InvalidKnock })
    await assert.rejects(c.knock(bobId.amid, { category: 'gossip', summary: 'x' }), { code: ErrorCode.InvalidKnock })
    await assert.rejects(c.knock(bobId.amid, { category: 'task', summary: 'x', duration_s: 5 }), { code: ErrorCode.InvalidKnock })
  })
})
