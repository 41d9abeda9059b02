// The account bridge in process, with a real relay and real SDK agents; the OpenClaw turn is a
// stand-in `dispatch` (the real gateway is test/gateway.test.ts): a DM wakes a turn and its reply
// comes back end-to-end encrypted; a restart does not run an answered message again; a room
// message is a group turn answered in the room; a ping-pong with another agent is stopped by the
// circuit breaker of the home's policy.
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chat, connect, memoryState, tasks, type Connection, type Message } from '@agentmesh/client'
import { createIdentity, saveIdentity, type Identity } from '@agentmesh/crypto'
import { startRelay, tempDir, waitFor } from '@agentmesh/testing'
import type { Relay } from '@agentmesh/server'
import { connectionOf, runAccount, sendText, type Dispatch, type KnockApproval } from '../src/bridge.ts'
import { resolveAccount, type InboundTurn } from '../src/mapping.ts'

async function collect (conn: Connection, into: Message[], signal: AbortSignal): Promise<void> {
  try { for await (const m of conn.messages({ signal })) into.push(m) } catch { /* aborted */ }
}

/** A relay and the agent home the bridge runs (its identity saved there), both gone after the test. */
async function clawHome (t: TestContext): Promise<{ relay: Relay, home: string, claw: Identity }> {
  const relay = await startRelay()
  const dir = tempDir()
  t.after(async () => { await relay.close(); dir.cleanup() })
  const home = join(dir.path, 'claw')
  const claw = createIdentity('claw')
  saveIdentity(home, claw)
  return { relay, home, claw }
}

/** A peer agent whose messages are read into `got` from the start, closed after the test. */
async function readingPeer (t: TestContext, server: string): Promise<{ peer: Connection, got: Message[] }> {
  const peer = await connect({ identity: createIdentity('peer'), state: memoryState(), server })
  const got: Message[] = []
  const pac = new AbortController()
  const reading = collect(peer, got, pac.signal)
  t.after(async () => { pac.abort(); await reading; await peer.close() })
  return { peer, got }
}

function startBridge (home: string, server: string, dispatch: Dispatch, extra: Record<string, unknown> = {}, retryDelaysMs: number[] = [0, 0], approval?: KnockApproval) {
  const ac = new AbortController()
  const logs: string[] = []
  let amid = ''
  const account = resolveAccount({ channels: { agentmesh: { home, server, ...extra } } })
  const done = runAccount({ account, dispatch, signal: ac.signal, log: l => logs.push(l), onConnected: a => { amid = a }, retryDelaysMs, ...(approval === undefined ? {} : { approval, knockPollMs: 50 }) })
  return { ac, logs, done, amid: () => amid, stop: async () => { ac.abort(); await done } }
}

describe('openclaw bridge (in process)', () => {
  it('a DM wakes one turn and its reply comes back E2EE; after a restart the answered message is not run again', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    const turns: InboundTurn[] = []
    const dispatch: Dispatch = async (turn, deliver) => { turns.push(turn); await deliver(`pong ${turn.rawText}`) }

    let b = startBridge(home, relay.url, dispatch)
    await waitFor(() => b.amid() !== '', 'the bridge to connect')
    assert.equal(b.amid(), claw.amid)
    assert.equal(connectionOf('default').amid, claw.amid)

    const { peer, got } = await readingPeer(t, relay.url)
    await peer.send(claw.amid, { text: 'ping 1' })
    await waitFor(() => got.length === 1, 'the reply')
    assert.equal(got[0]!.text, 'pong ping 1')
    assert.equal(got[0]!.from, claw.amid)
    assert.equal(got[0]!.encrypted, true, 'the reply is end-to-end encrypted')
    assert.deepEqual(turns.map(x => [x.kind, x.conversationId, x.rawText]), [['direct', peer.amid, 'ping 1']])

    await b.stop()
    assert.throws(() => connectionOf('default'), /not running/)
    b = startBridge(home, relay.url, dispatch)
    await waitFor(() => b.amid() !== '', 'the bridge to reconnect')
    await peer.send(claw.amid, { text: 'ping 2' })
    await waitFor(() => got.length === 2, 'the second reply')
    assert.deepEqual(turns.map(x => x.rawText), ['ping 1', 'ping 2'], 'ping 1 was not run again after the restart')
    assert.deepEqual(got.map(m => m.text), ['pong ping 1', 'pong ping 2'])

    // the outbound adapter's path: the agent sends on its own, to an AMID (E2EE)
    const sent = await sendText('default', `agentmesh:${peer.amid}`, 'unprompted hello')
    await waitFor(() => got.length === 3, 'the unprompted message')
    assert.equal(got[2]!.text, 'unprompted hello')
    assert.equal(got[2]!.id, sent.messageId)
    await assert.rejects(sendText('default', 'not-an-address', 'x'), (e: Error & { code?: string }) => e.code === 'AM_ERR_INVALID_ARGUMENT')
    await b.stop()
    await assert.rejects(sendText('default', peer.amid, 'x'), (e: Error & { code?: string }) => e.code === 'AM_ERR_CONNECTION_CLOSED')
  })

  it('a room message that mentions the agent is a group turn answered in the room; others start none', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    const turns: InboundTurn[] = []
    const b = startBridge(home, relay.url, async (turn, deliver) => { turns.push(turn); await deliver(`pong ${turn.rawText}`) })
    t.after(async () => { await b.stop() })
    await waitFor(() => b.amid() !== '', 'the bridge to connect')
    const { peer, got } = await readingPeer(t, relay.url)
    await chat(peer).createRoom({ id: 'ops' })
    await chat(connectionOf('default')).join('ops')
    await chat(peer).say('ops', 'deploy finished')
    await chat(peer).say('ops', `${claw.amid} status?`)
    await waitFor(() => got.some(m => m.from === claw.amid), 'the answer in the room')
    const answer = got.find(m => m.from === claw.amid)!
    assert.equal(answer.room, 'ops')
    assert.equal(answer.text, `pong ${claw.amid} status?`)
    assert.deepEqual(turns.map(x => [x.kind, x.conversationId, x.senderId]), [['group', '#ops', peer.amid]], 'the message without a mention started no turn')
  })

  it('a held knock is put to the owner (pairing request) once; when the owner approves the peer, its knock is accepted and its DM answered', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    writeFileSync(join(home, 'policy.json'), JSON.stringify({ version: 1 })) // knock-first: every knock held for the owner
    const requests: Array<{ from: string, category: string }> = []
    const approvedPeers: string[] = []
    const approval: KnockApproval = {
      request: async (k) => { requests.push({ from: k.from, category: k.intent.category }) },
      approved: async () => approvedPeers,
    }
    const b = startBridge(home, relay.url, async (turn, deliver) => { await deliver(`hello ${turn.senderId.slice(0, 6)}`) }, {}, [0, 0], approval)
    t.after(async () => { await b.stop() })
    await waitFor(() => b.amid() !== '', 'the bridge to connect')
    const { peer, got } = await readingPeer(t, relay.url)
    await assert.rejects(peer.send(claw.amid, { text: 'hi' }), (e: Error & { code?: string }) => e.code === 'AM_ERR_NO_GRANT', 'a stranger must knock first')
    await peer.knock(claw.amid, { category: 'question', summary: 'may I ask about your API?' })
    await waitFor(() => requests.length === 1, 'the pairing request')
    assert.deepEqual(requests, [{ from: peer.amid, category: 'question' }])
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(requests.length, 1, 'asked once per knock, not at every poll')
    assert.equal(peer.grants().received.length, 0, 'not accepted before the owner approves')
    approvedPeers.push(peer.amid)
    await waitFor(() => peer.grants().received.length === 1, 'the grant')
    await peer.send(claw.amid, { text: 'hi' })
    await waitFor(() => got.some(m => m.text !== undefined && m.text.startsWith('hello')), 'the answer')
    assert.ok(b.logs.some(l => l.includes('accepted: the owner approved the peer')))
    assert.ok(!b.logs.some(l => l.includes('may I ask')), 'the knock\'s text is not logged')
  })

  it('a task for the taskCommand is a turn of its own conversation; the reply is the task\'s result', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    const turns: InboundTurn[] = []
    const b = startBridge(home, relay.url, async (turn, deliver) => { turns.push(turn); await deliver(`answer to ${turn.rawText}`) }, { taskCommand: 'ask' })
    t.after(async () => { await b.stop() })
    await waitFor(() => b.amid() !== '', 'the bridge to connect')
    const peer = await connect({ identity: createIdentity('peer'), state: memoryState(), server: relay.url })
    t.after(async () => { await peer.close() })
    const job = await tasks(peer).dispatch({ to: claw.amid, command: 'ask', args: 'sum 2 and 3' })
    const done = await tasks(peer).wait(job.id, { pollMs: 50, signal: AbortSignal.timeout(20_000) })
    assert.equal(done.state, 'completed')
    assert.equal(done.result, 'answer to sum 2 and 3')
    assert.deepEqual(turns.map(x => [x.kind, x.conversationId, x.senderId]), [['direct', `task:${job.id}`, peer.amid]])
  })

  it('a failed turn is run again; one that always fails is given up after the last attempt (logged without its text), and the next message is answered', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    const attempts = new Map<string, number>()
    const b = startBridge(home, relay.url, async (turn, deliver) => {
      const n = (attempts.get(turn.rawText) ?? 0) + 1
      attempts.set(turn.rawText, n)
      if (turn.rawText === 'secret body that fails') throw new Error('model unavailable')
      if (turn.rawText === 'flaky' && n === 1) throw new Error('another OpenClaw process owns state-lifecycle')
      await deliver(`ok ${turn.rawText}`)
    })
    t.after(async () => { await b.stop() })
    await waitFor(() => b.amid() !== '', 'the bridge to connect')
    const { peer, got } = await readingPeer(t, relay.url)
    await peer.send(claw.amid, { text: 'secret body that fails' })
    await peer.send(claw.amid, { text: 'flaky' })
    await peer.send(claw.amid, { text: 'second' })
    await waitFor(() => got.length === 2, 'the answers to the flaky and the second message')
    assert.deepEqual(got.map(m => m.text), ['ok flaky', 'ok second'])
    assert.deepEqual([...attempts], [['secret body that fails', 3], ['flaky', 2], ['second', 1]], 'three attempts at most (two retries)')
    assert.equal(b.logs.filter(l => l.includes('given up')).length, 1)
    assert.ok(b.logs.some(l => l.includes('model unavailable')))
    assert.ok(!b.logs.some(l => l.includes('secret body')), 'no message body in the log')
  })

  it('a second run of an account takes over from the first (a channel restarted before the old run ended)', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    const turns: string[] = []
    const a = startBridge(home, relay.url, async (turn, deliver) => { turns.push(`a:${turn.rawText}`); await deliver('from a') })
    await waitFor(() => a.amid() !== '', 'the first run to connect')
    const b = startBridge(home, relay.url, async (turn, deliver) => { turns.push(`b:${turn.rawText}`); await deliver('from b') })
    t.after(async () => { await b.stop(); await a.stop() })
    await a.done
    await waitFor(() => b.amid() !== '', 'the second run to connect')
    assert.ok(b.logs.some(l => l.includes('takes over from the previous one')))
    assert.ok(a.logs.some(l => l.includes('closed')), 'the first run closed')
    const { peer, got } = await readingPeer(t, relay.url)
    await peer.send(claw.amid, { text: 'who answers?' })
    await waitFor(() => got.length === 1, 'the answer')
    assert.equal(got[0]!.text, 'from b')
    assert.deepEqual(turns, ['b:who answers?'])
    assert.equal(connectionOf('default').amid, claw.amid)
  })

  it('a stop during a turn leaves the message uncommitted: the next start runs it', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    let started = 0
    let b = startBridge(home, relay.url, async () => {
      started++
      await new Promise((_resolve, reject) => { b.ac.signal.addEventListener('abort', () => { reject(new Error('gateway stopping')) }, { once: true }) })
    })
    await waitFor(() => b.amid() !== '', 'the bridge to connect')
    const { peer, got } = await readingPeer(t, relay.url)
    await peer.send(claw.amid, { text: 'long job' })
    await waitFor(() => started === 1, 'the turn to start')
    await b.stop()
    assert.ok(b.logs.some(l => l.includes('runs again at the next start')))
    const turns: string[] = []
    b = startBridge(home, relay.url, async (turn, deliver) => { turns.push(turn.rawText); await deliver('done') })
    t.after(async () => { await b.stop() })
    await waitFor(() => got.length === 1, 'the answer after the restart')
    assert.deepEqual(turns, ['long job'])
    assert.equal(got[0]!.text, 'done')
  })

  it('two agents that answer each other forever are stopped by the circuit breaker of the home\'s policy', async (t) => {
    const { relay, home, claw } = await clawHome(t)
    writeFileSync(join(home, 'policy.json'), JSON.stringify({ version: 1, open: true, breaker: { threshold: 6, turn_gap_s: 60, window_s: 600, cooldown_s: 600 } }))
    let turns = 0
    const b = startBridge(home, relay.url, async (turn, deliver) => { turns++; await deliver(`reply ${turns} to ${turn.rawText.slice(0, 20)}`) })
    t.after(async () => { await b.stop() })
    await waitFor(() => b.amid() !== '', 'the bridge to connect')

    // the other agent answers every message it gets, at once, forever
    const bot = await connect({ identity: createIdentity('bot'), state: memoryState(), server: relay.url })
    const bac = new AbortController()
    let botSent = 0
    const botLoop = (async () => {
      try {
        for await (const m of bot.messages({ signal: bac.signal })) {
          botSent++
          await bot.send(m.from, { text: `again ${botSent}` }).catch(() => {})
        }
      } catch { /* aborted */ }
    })()
    t.after(async () => { bac.abort(); await botLoop; await bot.close() })
    await bot.send(claw.amid, { text: 'start' })

    await waitFor(() => connectionOf('default').safetyLog().some(e => e.event === 'breaker_open'), 'the breaker to open')
    const atTrip = turns
    // the loop has stopped: the bot's last message is held back and no send to it goes out
    await bot.send(claw.amid, { text: 'one more' })
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.ok(atTrip <= 8, `the breaker stopped the loop after ${atTrip} turns (threshold 6)`)
    assert.equal(turns, atTrip, 'no turn runs while the breaker is open')
    assert.deepEqual(connectionOf('default').safetyLog().filter(e => e.event === 'breaker_open').map(e => e.peer), [bot.amid])
  })
})
