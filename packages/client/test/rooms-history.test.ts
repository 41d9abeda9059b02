/**
 * A private room's history read by its members (docs/protocol.md §17.5): decrypted with the sender
 * keys each member holds (its own, and those handed to it), the messages it holds no key for
 * marked with the reason, and the live chains untouched by reading it.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Relay } from '@agentmesh/server'
import { createIdentity } from '@agentmesh/crypto'
import { chat, connect, memoryState, type Connection, type HistoryEntry } from '@agentmesh/client'
import { startRelay, takeMessages as take } from '@agentmesh/testing'

/** What a member sees of each entry: the text when decrypted, else the reason. */
const shown = (ms: HistoryEntry[]): Array<[string | undefined, boolean | undefined, string | undefined]> =>
  ms.map(m => [m.decrypted === true ? m.text : undefined, m.decrypted, m.not_decrypted?.reason])

describe('rooms history', () => {
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
  })
  const open = async (relay: Relay): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: createIdentity(), state: memoryState() })
    conns.push(c)
    return c
  }

  it('rooms history - members read a private room\'s history decrypted, their own messages too; a later member sees why it cannot read earlier ones; live messages still open', async () => {
    const relay = await startRelay()
    relays.push(relay)
    const [a, b, c] = [await open(relay), await open(relay), await open(relay)]
    await chat(a).createRoom({ id: 'vault', kind: 'private' })
    await chat(a).invite('vault', b.amid)
    await chat(b).join('vault')
    await chat(a).say('vault', 'one')
    await chat(a).say('vault', 'two')
    await chat(b).say('vault', 'three')
    // b reads a's two messages live (its chain for a's key moves past them), a reads b's
    assert.deepEqual((await take(b, 2)).map(m => m.text), ['one', 'two'])
    assert.deepEqual((await take(a, 1)).map(m => m.text), ['three'])

    // the relay's history is sealed; each member reads it decrypted, its own messages included
    const raw = await chat(b).history('vault')
    assert.deepEqual(raw.messages.map(m => [m.type, m.text]), [['e2ee.group', undefined], ['e2ee.group', undefined], ['e2ee.group', undefined]])
    for (const who of [a, b]) {
      const h = await chat(who).readHistory('#vault')
      assert.deepEqual(shown(h.messages), [['one', true, undefined], ['two', true, undefined], ['three', true, undefined]])
      assert.deepEqual(h.messages.map(m => [m.type, m.from, m.seq]), [['chat', a.amid, 1], ['chat', a.amid, 2], ['chat', b.amid, 3]])
      assert.equal(h.last_seq, 3)
    }

    // c joins later: a's key reaches it from where a's chain is now, b's not at all yet
    await chat(a).invite('vault', c.amid)
    await chat(c).join('vault')
    await chat(a).say('vault', 'four')
    assert.deepEqual((await take(c, 1)).map(m => m.text), ['four'])
    const atC = (await chat(c).readHistory('vault')).messages
    assert.deepEqual(shown(atC), [[undefined, false, 'before_key'], [undefined, false, 'before_key'], [undefined, false, 'no_key'], ['four', true, undefined]])
    assert.match(atC[0]!.not_decrypted!.message, /^no key: sent before you joined/)
    assert.equal(atC[0]!.type, 'e2ee.group', 'an entry not decrypted stays as stored')

    // reading history moved no live chain: the next messages open live, for everyone
    await chat(a).say('vault', 'five')
    await chat(b).say('vault', 'six')
    assert.deepEqual((await take(b, 2)).map(m => m.text), ['four', 'five'])
    assert.deepEqual((await take(c, 2)).map(m => m.text), ['five', 'six'])
    assert.deepEqual((await take(a, 1)).map(m => m.text), ['six'])
    // and the history once more, the same page read twice: the same answer
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(shown((await chat(b).readHistory('vault')).messages).map(x => x[0]), ['one', 'two', 'three', 'four', 'five', 'six'])
    }
    assert.deepEqual(shown((await chat(c).readHistory('vault', { after: 3 })).messages), [['four', true, undefined], ['five', true, undefined], ['six', true, undefined]])
    // decryptHistory opens entries read another way (the CLI pages the REST history itself)
    assert.deepEqual(chat(a).decryptHistory('vault', (await chat(a).history('vault', { limit: 2 })).messages).map(m => m.text), ['five', 'six'])
  })
})
