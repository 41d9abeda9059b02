/**
 * Signed audit heads (docs/protocol.md §17.8) in process: the signature, the verifier given heads,
 * and a relay that signs at start and on shutdown and answers GET /api/v1/audit/heads.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity, signAuditHead, verifyAuditHead } from '@agentmesh/crypto'
import { AuditVerifier, chainAudit, memoryStore, type AuditInput } from '@agentmesh/store'
import { createRelay, memoryAuditHeads, silentLogger } from '@agentmesh/server'

const row = (n: number): AuditInput => ({ at: 1_700_000_000_000 + n, actor: 'operator', action: 'settings.set', detail: { n } })
const API_KEY = 'operator-key-for-tests-0123456789'

describe('audit heads', () => {
  it('audit heads - a head verifies with the key of its relay only, and not once a field changed', () => {
    const relay = createIdentity()
    const h = signAuditHead(relay, { seq: 7, hash: 'a'.repeat(64), at: 1000 })
    assert.deepEqual(Object.keys(h).sort(), ['at', 'hash', 'relay', 'seq', 'sig'])
    assert.equal(h.relay, relay.amid)
    assert.ok(verifyAuditHead(h))
    assert.ok(verifyAuditHead(h, relay.amid))
    assert.equal(verifyAuditHead(h, createIdentity().amid), false, 'another relay\'s')
    for (const bad of [{ ...h, seq: 8 }, { ...h, hash: 'b'.repeat(64) }, { ...h, at: 1001 }, { ...h, relay: createIdentity().amid }, { ...h, sig: h.sig.slice(1) }, { ...h, seq: -1 }, { ...h, hash: 'xyz' }, null, 'head']) {
      assert.equal(verifyAuditHead(bad), false, JSON.stringify(bad))
    }
  })

  it('audit heads - the verifier names the rows missing after the newest head, and the heads around a re-chained row', () => {
    const rows = chainAudit(undefined, Array.from({ length: 30 }, (_, i) => row(i + 1)))
    const head = (seq: number): { seq: number, hash: string } => ({ seq, hash: rows[seq - 1]!.hash })
    const check = (rs: typeof rows, heads: Array<{ seq: number, hash: string }>): ReturnType<AuditVerifier['result']> => {
      const v = new AuditVerifier(heads)
      v.add(rs)
      return v.result()
    }
    assert.deepEqual(check(rows, [head(10), head(30)]), { ok: true, rows: 30, last: rows[29], head: 30 })
    assert.deepEqual(check(rows.slice(0, 25), [head(10), head(30)]), { ok: false, rows: 25, seq: 26, reason: 'rows 26-30 are missing after row 25: the signed head names row 30', problem: 'tail' })
    assert.deepEqual(check(rows.slice(0, 29), [head(30)]), { ok: false, rows: 29, seq: 30, reason: 'row 30 is missing after row 29: the signed head names row 30', problem: 'tail' })
    // row 15 rewritten, the rest re-chained: links everywhere, but not the hash signed at 20
    const forged = chainAudit(rows[13], [{ ...row(15), detail: { n: 999 } }, ...Array.from({ length: 15 }, (_, i) => row(i + 16))])
    const rechained = [...rows.slice(0, 14), ...forged]
    const r = check(rechained, [head(10), head(20), head(30)])
    assert.equal(r.ok, false)
    assert.deepEqual(r.ok ? undefined : [r.seq, r.problem, r.reason], [20, 'rechained', 'the chain was re-computed: row 20 links, but its hash is not the one the signed head holds (a row in 11-20 was rewritten or removed, and the rows after it re-chained)'])
    // newer rows than the head are fine; no head: nothing to compare
    assert.equal(check(rows, [head(20)]).ok, true)
    assert.equal((check(rechained, []) as { head?: number }).head, undefined)
    // a head with a lower seq than the one before starts again (a loss accepted at start): the older ones no longer count
    assert.deepEqual(check(rows.slice(0, 12), [head(10), head(30), head(12)]), { ok: true, rows: 12, last: rows[11], head: 12 })
  })

  it('audit heads - the relay signs the head at start and on shutdown, and answers them on GET /api/v1/audit/heads and in verify', async () => {
    const store = memoryStore()
    await store.appendAudit(Array.from({ length: 5 }, (_, i) => ({ ...row(i + 1), at: Date.now() })))
    const heads = memoryAuditHeads()
    const relay = await createRelay({ port: 0, apiKey: API_KEY, logger: silentLogger }, { store, auditHeads: heads })
    let closed = false
    try {
      const last = await store.lastAudit()
      assert.ok(last!.seq >= 5)
      assert.deepEqual((await heads.list()).map(h => [h.seq, h.hash, h.relay]), [[last!.seq, last!.hash, relay.relayAmid]])
      const get = async (path: string): Promise<any> => await (await fetch(relay.url + path, { headers: { 'x-api-key': API_KEY } })).json()
      const answered = await get('/api/v1/audit/heads')
      assert.equal(answered.relay, relay.relayAmid)
      assert.deepEqual(answered.heads, await heads.list())
      assert.ok(verifyAuditHead(answered.heads[0], relay.relayAmid))
      assert.deepEqual(await get('/api/v1/audit/verify'), { ok: true, rows: last!.seq, last_seq: last!.seq, last_hash: last!.hash, signed_head_seq: last!.seq })
      assert.equal((await get('/api/v1/audit/heads?limit=0')).error.code, 'AM_ERR_INVALID_ARGUMENT')
      const res = await fetch(relay.url + '/api/v1/settings', { method: 'PATCH', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ presence_idle_ms: 90_000 }) })
      assert.equal(res.status, 200)
      await relay.close()
      closed = true
      const all = await heads.list()
      assert.deepEqual(all.map(h => h.seq), [last!.seq, last!.seq + 1], 'the final head names the row written last (settings.set)')
      assert.ok(all.every(h => verifyAuditHead(h, relay.relayAmid)))
    } finally {
      if (!closed) await relay.close()
    }
  })
})
