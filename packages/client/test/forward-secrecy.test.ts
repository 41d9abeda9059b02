/**
 * Forward secrecy on disk (docs/security.md, "Someone with the agent's disk"): after a conversation
 * and a clean close, the agent's files hold no processed plaintext and no earlier ratchet state,
 * even for an attacker who holds the identity file and so the state key.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { STATE_SCRYPT_V1, createIdentity, deriveStateKey, openRecord, sealRecord, type Identity, type RatchetState } from '@agentmesh/crypto'
import { ErrorCode, type AgentMeshError } from '@agentmesh/protocol'
import { connect, memoryState, sqliteState, type ClientState, type Connection, type Message } from '@agentmesh/client'
import { E2ee } from '@agentmesh/client/internal'
import type { Relay } from '@agentmesh/server'
import { startRelay, tempDir, waitFor, takeMessages as take } from '@agentmesh/testing'

/** The SQLite state, with every sealed record written kept aside (what an attacker would look for). */
function recording (path: string): { state: ClientState, written: Array<{ kind: string, key: string, value: Buffer }> } {
  const inner = sqliteState(path)
  const written: Array<{ kind: string, key: string, value: Buffer }> = []
  return {
    written,
    state: {
      ...inner,
      recordPut (kind, key, value, at) {
        written.push({ kind, key, value: Buffer.from(value) })
        inner.recordPut(kind, key, value, at)
      },
    },
  }
}

/** Whether any of three 24-byte pieces of `blob` (start, middle, end) is in `bytes`. */
function holds (bytes: Buffer, blob: Buffer): boolean {
  const n = 24
  if (blob.length < n) return bytes.includes(blob)
  const mid = Math.floor((blob.length - n) / 2)
  return [0, mid, blob.length - n].some(at => bytes.includes(blob.subarray(at, at + n)))
}

/**
 * Opens a sealed record as someone holding the identity would: with the state key, or for a
 * short-lived record (first byte 0xe1, then the epoch) with that epoch's key, if it is still in the file.
 */
function attacker (stateKey: Buffer, live: Array<{ kind: string, key: string, value: Buffer }>): (kind: string, key: string, value: Buffer) => Buffer {
  const epochs = new Map<number, Buffer>()
  for (const r of live.filter(r => r.kind === 'epoch')) {
    const v = JSON.parse(openRecord(stateKey, r.kind, r.key, r.value).toString('utf8')) as { key: { $b: string } }
    epochs.set(Number(r.key), Buffer.from(v.key.$b, 'base64url'))
  }
  return (kind, key, value) => {
    if (value[0] === 0xe1 && ['plain', 'sent', 'deferred'].includes(kind)) {
      const k = epochs.get(value.readUInt32BE(1))
      if (k === undefined) throw new Error(`the key of epoch ${value.readUInt32BE(1)} is gone`)
      return openRecord(k, kind, key, value.subarray(5))
    }
    return openRecord(stateKey, kind, key, value)
  }
}

describe('forward secrecy on disk', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
    dir.cleanup()
  })

  it('forward secrecy - after 15 round trips and a clean close, no processed plaintext or earlier chain key is in state.db, -wal or -shm, with the identity', async () => {
    const relay = await startRelay()
    relays.push(relay)
    const alice: Identity = createIdentity('alice')
    const bob: Identity = createIdentity('bob')
    const path = join(dir.path, 'bob', 'state.db')
    const rec = recording(path)
    const a = await connect({ server: relay.url, identity: alice, state: memoryState() })
    conns.push(a)
    const b = await connect({ server: relay.url, identity: bob, state: rec.state })
    const received: string[] = []
    for (let round = 0; round < 15; round++) {
      const texts = [0, 1, 2].map(i => `to-bob-${round}-${i}-${'x'.repeat(20)}`)
      for (const t of texts) await a.send(bob.amid, { text: t })
      assert.deepEqual((await take(b, 3)).map(m => m.text), texts)
      received.push(...texts)
      await b.send(alice.amid, { text: `to-alice-${round}` })
      assert.deepEqual((await take(a, 1)).map(m => m.text), [`to-alice-${round}`])
    }
    assert.equal(received.length, 45)
    await b.close()
    rec.state.close() // the caller's state: the connection leaves it open

    const files = ['state.db', 'state.db-wal', 'state.db-shm'].map(f => join(dir.path, 'bob', f)).filter(f => existsSync(f))
    const bytes = files.map(f => ({ f, b: readFileSync(f) }))

    // the attacker: the identity and the file's salt give the state key; every live record opens
    const db = new Database(path, { readonly: true })
    const salt = db.prepare("SELECT value FROM meta WHERE name = 'state_salt'").pluck().get() as string
    const live = db.prepare('SELECT kind, key, value FROM records').all() as Array<{ kind: string, key: string, value: Buffer }>
    db.close()
    const key = deriveStateKey(bob.secretKey, Buffer.from(salt, 'base64url'))
    const open = attacker(key, live)
    const opened = live.filter(r => r.kind !== 'meta').map(r => open(r.kind, r.key, r.value).toString('utf8'))
    for (const t of received) assert.equal(opened.some(v => v.includes(t)), false, `no live record holds "${t}"`)
    assert.equal(live.filter(r => r.kind === 'plain').length, 0, 'no kept plaintext is left once processed')

    // every plaintext record and every session state written, other than the live ones, is gone from the files
    const liveValues = new Set(live.map(r => r.value.toString('base64')))
    const gone = rec.written.filter(w => (w.kind === 'plain' || w.kind === 'session') && !liveValues.has(w.value.toString('base64')))
    assert.ok(gone.filter(w => w.kind === 'plain').length >= 45, 'every received message was kept sealed until processed')
    assert.ok(gone.filter(w => w.kind === 'session').length >= 45, 'the session was saved after each message')
    for (const { f, b: content } of bytes) {
      const left = gone.filter(w => holds(content, w.value))
      assert.deepEqual(left.map(w => `${w.kind} ${w.key.replace('\n', ' ')}`), [], `${f} holds no earlier ${left[0]?.kind ?? ''} record`)
    }

    // the chain keys of earlier receiving chains: none is in a live record
    const chainKeys = new Set<string>()
    for (const w of rec.written.filter(w => w.kind === 'session')) {
      const s = JSON.parse(open(w.kind, w.key, w.value).toString('utf8')) as { current: RatchetState }
      if (s.current.ckr !== null) chainKeys.add(s.current.ckr)
    }
    const current = JSON.parse(opened[live.filter(r => r.kind !== 'meta').findIndex(r => r.kind === 'session')]!) as { current: RatchetState }
    chainKeys.delete(current.current.ckr!)
    assert.ok(chainKeys.size >= 44, `earlier receiving chain keys seen: ${chainKeys.size}`)
    for (const ck of chainKeys) {
      assert.equal(opened.some(v => v.includes(ck)), false, 'no live record holds an earlier chain key')
      for (const { f, b: content } of bytes) assert.equal(content.includes(Buffer.from(ck, 'base64url')), false, `${f} holds no earlier chain key in the clear`)
    }
  })

  it('forward secrecy - earlier sessions are deleted by age as well as count (30 days after they were replaced)', () => {
    const id = createIdentity('carol')
    const state = memoryState()
    const e2ee = new E2ee({ identity: id, state, httpBase: 'http://127.0.0.1:1', prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e12, onWarning: () => {} })
    const now = Date.now()
    const day = 24 * 3600 * 1000
    const stub = (n: number): Record<string, unknown> => ({ v: 1, marker: n })
    const peer = createIdentity('dave').amid
    e2ee.saveRecord('session', peer, { current: stub(0), previous: [stub(1), stub(2)], previousAt: [now - 2 * day, now - 31 * day], peerKey: 'k', usedAt: now }, now)
    const older = createIdentity('erin').amid
    // a record saved before dates were kept: its earlier sessions count from its last use
    e2ee.saveRecord('session', older, { current: stub(0), previous: [stub(3)], peerKey: 'k', usedAt: now - 40 * day }, now)
    e2ee.cleanIdle(now)
    const kept = e2ee.record<{ previous: Array<{ marker: number }>, previousAt: number[] }>('session', peer)!
    assert.deepEqual(kept.previous.map(p => p.marker), [1], 'the one replaced 31 days ago is gone')
    assert.deepEqual(kept.previousAt, [now - 2 * day])
    assert.deepEqual(e2ee.record<{ previous: unknown[] }>('session', older)!.previous, [])
  })

  it('at rest - a passphrase is stretched with scrypt N=2^17 in a new state; a state made with the first parameters still opens', () => {
    const id = createIdentity('frank')
    const make = (state: ClientState, passphrase: string): E2ee => new E2ee({ identity: id, state, httpBase: 'http://127.0.0.1:1', passphrase, prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e12, onWarning: () => {} })
    const fresh = memoryState()
    make(fresh, 'pw')
    assert.equal(fresh.metaGet('state_scrypt'), 'N=131072,r=8,p=1')
    // a state sealed before the parameters were recorded: N = 2^14
    const legacy = memoryState()
    const salt = Buffer.alloc(32, 7)
    legacy.metaSet('state_salt', salt.toString('base64url'))
    legacy.metaSet('state_passphrase', 'yes')
    const key = deriveStateKey(id.secretKey, salt, 'pw', STATE_SCRYPT_V1)
    legacy.recordPut('meta', 'check', sealRecord(key, 'meta', 'check', Buffer.from(id.amid)), 1)
    make(legacy, 'pw')
    assert.equal(legacy.metaGet('state_scrypt'), undefined, 'left as it was made')
    assert.throws(() => make(legacy, 'wrong'), { code: ErrorCode.BadPassphrase })
    legacy.metaSet('state_scrypt', 'N=2,r=1,p=1')
    assert.throws(() => make(legacy, 'pw'), { code: ErrorCode.DataCorrupt })
  })

  it('at rest - kept plaintexts and the sent log are sealed under a daily key, destroyed two days on: a stale copy no longer opens with the identity', (t) => {
    const day = 24 * 3600 * 1000
    const t0 = Math.floor(Date.now() / day) * day + 3600_000
    t.mock.timers.enable({ apis: ['Date'], now: t0 })
    const id = createIdentity('gina')
    const state = memoryState()
    const e2ee = new E2ee({ identity: id, state, httpBase: 'http://127.0.0.1:1', prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e12, onWarning: () => {} })
    e2ee.saveRecord('sent', 'old-entry', { text: 'sent on day 0' }, t0)
    e2ee.saveRecord('plain', 'kept-entry', { type: 'chat', payload: { text: 'kept since day 0' } }, t0)
    e2ee.saveRecord('grant-in', 'long-lived', { scopes: ['chat'] }, t0)
    const stale = { sent: Buffer.from(state.recordGet('sent', 'old-entry')!), plain: Buffer.from(state.recordGet('plain', 'kept-entry')!) }
    const stateKey = deriveStateKey(id.secretKey, Buffer.from(state.metaGet('state_salt')!, 'base64url'))
    const liveOf = (): Array<{ kind: string, key: string, value: Buffer }> => ['epoch', 'sent', 'plain', 'grant-in'].flatMap(kind => state.recordList(kind).map(r => ({ kind, key: r.key, value: Buffer.from(r.value) })))
    assert.match(attacker(stateKey, liveOf())('sent', 'old-entry', stale.sent).toString(), /sent on day 0/, 'while its day key lives, the identity opens it')
    assert.equal(stale.sent[0], 0xe1)
    // a day on: nothing is destroyed yet (yesterday's key is kept)
    t.mock.timers.tick(day)
    assert.equal(e2ee.rotateEpochs(), 0)
    // two days on: day 0's key goes; the sent entry (past its 24 h) is deleted, the kept message sealed again
    t.mock.timers.tick(day)
    assert.equal(e2ee.rotateEpochs(), 1)
    assert.deepEqual(e2ee.records('sent'), [])
    assert.deepEqual(e2ee.record('plain', 'kept-entry'), { type: 'chat', payload: { text: 'kept since day 0' } }, 'an unprocessed message is not lost')
    assert.deepEqual(e2ee.record('grant-in', 'long-lived'), { scopes: ['chat'] })
    const open = attacker(stateKey, liveOf())
    assert.throws(() => open('sent', 'old-entry', stale.sent), /epoch .* is gone/)
    assert.throws(() => open('plain', 'kept-entry', stale.plain), /epoch .* is gone/)
    assert.match(open('plain', 'kept-entry', Buffer.from(state.recordGet('plain', 'kept-entry')!)).toString(), /kept since day 0/)
  })

  it('at rest - a peer running from a copy of its home is detected: two messages under one key are AM_ERR_STATE_CLONED, and it is told to start over', async () => {
    const relay = await startRelay()
    relays.push(relay)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const warnings: AgentMeshError[] = []
    const home = join(dir.path, 'clone-a')
    const b = await connect({ server: relay.url, identity: bob, state: memoryState(), onWarning: (w) => { warnings.push(w) } })
    conns.push(b)
    let st = sqliteState(join(home, 'state.db'))
    const a = await connect({ server: relay.url, identity: alice, state: st })
    await a.send(bob.amid, { text: 'hello' })
    await take(b, 1)
    await b.send(alice.amid, { text: 'hi' })
    await take(a, 1)
    await a.close()
    st.close()
    // the home is copied (a backup restored next to the original, a cloned machine): both run
    mkdirSync(join(dir.path, 'clone-b'), { recursive: true })
    for (const f of ['state.db', 'state.db-wal']) if (existsSync(join(home, f))) copyFileSync(join(home, f), join(dir.path, 'clone-b', f))
    st = sqliteState(join(home, 'state.db'))
    const copy = sqliteState(join(dir.path, 'clone-b', 'state.db'))
    const a1 = await connect({ server: relay.url, identity: alice, state: st })
    const a2 = await connect({ server: relay.url, identity: alice, state: copy })
    conns.push(a1, a2)
    assert.deepEqual([a1.sessions().map(x => x.peer), a2.sessions().map(x => x.peer)], [[bob.amid], [bob.amid]], 'both copies hold the session')
    await a1.send(bob.amid, { text: 'from the original' })
    await a2.send(bob.amid, { text: 'from the copy' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['from the original'])
    // bob reads on (a message is decrypted when the application asks for it)
    const stop = new AbortController()
    const more: Message[] = []
    const reading = (async () => { try { for await (const m of b.messages({ signal: stop.signal })) more.push(m) } catch { /* aborted */ } })()
    await waitFor(() => warnings.length >= 1, 'bob to notice the copy')
    assert.deepEqual(warnings.map(w => w.code), [ErrorCode.StateCloned])
    assert.match(warnings[0]!.message, /copy of its state/)
    // told (e2ee.reset), the copy sends its message again in a new session of its own: no key is used twice again
    await waitFor(() => more.length >= 1, 'the copy\'s message, sent again')
    stop.abort()
    await reading
    assert.deepEqual(more.map(m => m.text), ['from the copy'])
    // the copy's log: 'hello' (from before the copy), its message (resent) and the resend
    const sent = a2.sent({ peer: bob.amid })
    assert.deepEqual(sent.map(e => e.status), ['stored', 'resent', 'stored'])
    assert.equal(more[0]!.id, sent[1]!.id, 'shown under its first id')
    assert.notEqual((more[0]!.envelope.payload as { prekey?: unknown }).prekey, undefined, 'in a new session (a new PQXDH header)')
    await a1.close()
    await a2.close()
    st.close()
    copy.close()
  })
})
