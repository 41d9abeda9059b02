/**
 * The owner console's DM history (docs/protocol.md §22.6): kept in the agent's home, sealed (the
 * state file never holds a text in the clear), found again by the next run, and bounded.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity, saveIdentity } from '@agentmesh/crypto'
import { connect, memoryState } from '@agentmesh/client'
import { sealedRecords } from '@agentmesh/client/internal'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { tempDir } from '@agentmesh/testing'
import { DmHistory, MAX_DM_TEXT_CHARS } from '../src/dashboard/history.ts'

describe('owner console history', () => {
  const dir = tempDir()
  let relay: Relay | undefined
  after(async () => {
    await relay?.close()
    dir.cleanup()
  })

  it('dm history - sealed in the home\'s state, found again by the next run, newest kept within its bound', async () => {
    relay = await createRelay({ port: 0, logger: silentLogger })
    const home = join(dir.path, 'owner')
    saveIdentity(home, createIdentity('owner'))
    const peer = createIdentity('peer').amid
    const other = createIdentity('other').amid
    const secret = `the vault code is ${Math.random().toString(36).slice(2)}`

    const c1 = await connect({ server: relay.url, home, deliver: false })
    const h1 = new DmHistory(c1, 3)
    assert.equal(h1.add({ id: 'm-00000001', peer, from: peer, direction: 'in', text: secret, ts: 1, encrypted: true }), true)
    assert.equal(h1.add({ id: 'm-00000001', peer, from: peer, direction: 'in', text: secret, ts: 1, encrypted: true }), false, 'once per peer and id')
    h1.add({ id: 'm-00000002', peer: other, from: c1.amid, direction: 'out', text: 'to other', ts: 2, encrypted: true, state: 'stored' })
    h1.add({ id: 'm-00000003', peer, from: c1.amid, direction: 'out', text: 'x'.repeat(MAX_DM_TEXT_CHARS + 10), ts: 3, encrypted: true, state: 'stored' })
    await c1.close()

    // nothing of the texts in the clear in any file of the home (the database and its journal)
    for (const f of readdirSync(home)) {
      const bytes = readFileSync(join(home, f))
      assert.equal(bytes.includes(secret), false, `${f} holds the text in the clear`)
      assert.equal(bytes.includes('to other'), false, `${f} holds the text in the clear`)
    }

    const c2 = await connect({ server: relay.url, home, deliver: false })
    try {
      const h2 = new DmHistory(c2, 3)
      assert.equal(h2.size, 3)
      assert.deepEqual(h2.with(peer, 10).map(e => [e.id, e.direction, e.text.length]), [['m-00000001', 'in', secret.length], ['m-00000003', 'out', MAX_DM_TEXT_CHARS]])
      assert.equal(h2.with(peer, 10)[0]!.text, secret)
      assert.deepEqual(h2.peers().map(p => [p.peer, p.count]), [[peer, 2], [other, 1]], 'most recent conversation first')
      // a fourth message: the oldest goes, here and in the state
      h2.add({ id: 'm-00000004', peer: other, from: other, direction: 'in', text: 'newest', ts: 4, encrypted: true })
      assert.deepEqual(h2.with(peer, 10).map(e => e.id), ['m-00000003'])
      assert.deepEqual(new DmHistory(c2, 3).with(other, 10).map(e => e.text), ['to other', 'newest'])
      assert.equal(new DmHistory(c2, 3).size, 3)
    } finally {
      await c2.close()
    }
  })

  it('sealed records - an application names its own kinds (app.…): the SDK\'s kinds are refused with AM_ERR_INVALID_ARGUMENT', async () => {
    relay ??= await createRelay({ port: 0, logger: silentLogger })
    const c = await connect({ server: relay.url, identity: createIdentity('x'), state: memoryState(), deliver: false })
    try {
      for (const kind of ['session', 'sent', 'app.', 'app.UPPER', 'app.' + 'x'.repeat(64)]) {
        assert.throws(() => sealedRecords(c, kind), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /app\./.test(e.message), kind)
      }
      const r = sealedRecords<{ n: number }>(c, 'app.test')
      r.put('a', { n: 1 })
      assert.deepEqual(r.list().map(x => [x.key, x.value.n]), [['a', 1]])
    } finally {
      await c.close()
    }
  })
})
