/**
 * The shared suite every `Backplane` implementation must pass (the in-process one in
 * @agentmesh/server; a NATS one in its own package). Each case gets two nodes' handles onto one
 * fresh bus from `setup` (an in-process backplane may hand the same object twice) and gives them to
 * `teardown` at the end, pass or fail. Nothing waits on time: a case waits until a subscriber has
 * seen what it expects.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Backplane, BackplaneMessage } from '@agentmesh/server'

export interface BackplaneSuiteInit {
  /** Names the implementation in the test report, e.g. "in-process". */
  name: string
  /** Two nodes' handles onto one new bus, started. */
  setup: () => Promise<{ a: Backplane, b: Backplane }>
  /** Releases what `setup` created (stopping what is not stopped yet). */
  teardown: (nodes: { a: Backplane, b: Backplane }) => Promise<void>
}

/** A subscriber that records what it receives and lets a case wait for the n-th message. */
/** How long a case waits for what it expects before it fails (never reached when nothing is lost). */
const UNTIL_MS = 30_000

function recorder (bp: Backplane): { got: BackplaneMessage[], until: (n: number) => Promise<void>, off: () => void } {
  const got: BackplaneMessage[] = []
  const waiting: Array<{ n: number, resolve: () => void }> = []
  const off = bp.subscribe((m) => {
    got.push(m)
    for (const w of waiting.filter(w => got.length >= w.n)) { waiting.splice(waiting.indexOf(w), 1); w.resolve() }
  })
  return {
    got,
    off,
    // bounded, so that a lost message fails the case instead of hanging the run
    until: async (n) => {
      if (got.length >= n) return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`a subscriber saw ${got.length} of ${n} messages within ${UNTIL_MS / 1000} s`)) }, UNTIL_MS)
        waiting.push({ n, resolve: () => { clearTimeout(timer); resolve() } })
      })
    },
  }
}

const stored = (origin: string, seq: number): BackplaneMessage => ({ type: 'inbox:stored', origin, inboxes: [{ recipient: 'am-bob', seq }] })

export default function backplaneSuite (init: BackplaneSuiteInit): void {
  const withNodes = (fn: (n: { a: Backplane, b: Backplane }) => Promise<void>) => async () => {
    const nodes = await init.setup()
    try { await fn(nodes) } finally { await init.teardown(nodes) }
  }

  describe(`backplane compliance: ${init.name}`, () => {
    it('backplane - every subscriber, on either node, gets every message, the publisher\'s own included', withNodes(async ({ a, b }) => {
      const onA = recorder(a)
      const onB1 = recorder(b)
      const onB2 = recorder(b)
      const msgs: BackplaneMessage[] = [
        stored('node-a', 1),
        { type: 'room:stored', origin: 'node-a', rooms: [{ room: 'ops', seq: 7 }, { room: 'lab', seq: 2 }] },
        { type: 'presence', origin: 'node-a', amid: 'am-alice', status: 'online' },
        { type: 'cache:invalidate', origin: 'node-a', kind: 'members', key: 'ops' },
        { type: 'event', origin: 'node-a', amids: ['am-bob', 'am-carol'], frame: '{"op":"event","event":{"type":"typing"}}' },
        { type: 'node:heartbeat', origin: 'node-a' },
        { type: 'node:leaving', origin: 'node-a' },
        { type: 'rate:spent', origin: 'node-a', spent: { api: [['am-alice', 3]], chat: [['am-bob', 1]] } },
      ]
      for (const m of msgs) await a.publish(m)
      for (const r of [onA, onB1, onB2]) {
        await r.until(msgs.length)
        assert.deepEqual(r.got, msgs)
      }
    }))

    it('backplane - messages of one publisher arrive in publish order, even when published without waiting', withNodes(async ({ a, b }) => {
      const onB = recorder(b)
      const onA = recorder(a)
      const sends: Array<Promise<void>> = []
      for (let i = 1; i <= 50; i++) {
        sends.push(a.publish(stored('node-a', i)))
        sends.push(b.publish(stored('node-b', i)))
      }
      await Promise.all(sends)
      for (const r of [onA, onB]) {
        await r.until(100)
        assert.equal(r.got.length, 100)
        for (const origin of ['node-a', 'node-b']) {
          const seqs = r.got.filter(m => m.origin === origin).map(m => m.type === 'inbox:stored' ? m.inboxes[0]!.seq : -1)
          assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1), `order of ${origin}`)
        }
      }
    }))

    it('backplane - an unsubscribed handler gets nothing published after it left; the others still do', withNodes(async ({ a, b }) => {
      const leaving = recorder(b)
      const staying = recorder(b)
      await a.publish(stored('node-a', 1))
      await leaving.until(1)
      await staying.until(1)
      leaving.off()
      leaving.off() // twice is harmless
      await a.publish(stored('node-a', 2))
      await a.publish(stored('node-a', 3))
      await staying.until(3)
      assert.deepEqual(leaving.got, [stored('node-a', 1)])
      assert.deepEqual(staying.got.map(m => m.type === 'inbox:stored' ? m.inboxes[0]!.seq : -1), [1, 2, 3])
    }))

    it('backplane - after stop() a publish rejects with AM_ERR_SHUTTING_DOWN', withNodes(async ({ a }) => {
      await a.stop()
      await assert.rejects(a.publish(stored('node-a', 1)), (err: unknown) => {
        assert.ok(AgentMeshError.is(err, ErrorCode.ShuttingDown))
        assert.match((err as Error).message, /stopped/)
        return true
      })
    }))

    it('backplane - a published message is not changed, and what subscribers get equals it', withNodes(async ({ a, b }) => {
      const onB = recorder(b)
      const msg: BackplaneMessage = { type: 'inbox:stored', origin: 'node-a', inboxes: [{ recipient: 'am-bob', seq: 7 }, { recipient: 'am-carol', seq: 3 }] }
      const before = structuredClone(msg)
      await a.publish(msg)
      await onB.until(1)
      assert.deepEqual(msg, before)
      assert.deepEqual(onB.got[0], before)
    }))
  })
}
