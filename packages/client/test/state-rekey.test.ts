import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { memoryState, rekeyState } from '@agentmesh/client'
import { E2ee } from '@agentmesh/client/internal'
import { ErrorCode } from '@agentmesh/protocol'

const policy = { lowWater: 1, target: 1, checkMs: 1e9 }

/** The state sealed again under another passphrase: every record opens with the new one, none with the old. */
describe('state rekey', () => {
  it('state rekey - records under the state key and under a day\'s key open after a passphrase is set, changed and taken off; the old one is refused', () => {
    const id = createIdentity('alice')
    const state = memoryState()
    const open = (passphrase?: string): E2ee => new E2ee({ identity: id, state, httpBase: 'http://127.0.0.1:1', ...(passphrase === undefined ? {} : { passphrase }), prekeys: policy, sessionIdleMs: 1e9, onWarning: () => {} })
    const e0 = open()
    e0.saveRecord('grant', 'g1', { scopes: ['chat'] })
    e0.saveRecord('sent', 's1', { text: 'kept under a day key' }) // a short-lived kind: sealed under the day's key
    const xk = e0.exchangeKey().publicKey
    assert.equal(rekeyState(state, id, undefined, 'pw one').already, false)
    assert.throws(() => open(), { code: ErrorCode.BadPassphrase })
    const e1 = open('pw one')
    assert.deepEqual([e1.record('grant', 'g1'), e1.record('sent', 's1')], [{ scopes: ['chat'] }, { text: 'kept under a day key' }])
    assert.deepEqual(e1.exchangeKey().publicKey, xk)
    // run again (as after a stop between the state and identity.json): recognised, nothing done
    assert.deepEqual(rekeyState(state, id, undefined, 'pw one'), { resealed: 0, left: 0, already: true, empty: false })
    assert.throws(() => rekeyState(state, id, 'wrong', 'pw two'), { code: ErrorCode.BadPassphrase })
    const r = rekeyState(state, id, 'pw one', 'pw two')
    assert.equal(r.left, 1, 'the record under the day\'s key is left; its day key is sealed again')
    assert.throws(() => open('pw one'), { code: ErrorCode.BadPassphrase })
    assert.deepEqual(open('pw two').record('sent', 's1'), { text: 'kept under a day key' })
    rekeyState(state, id, 'pw two', undefined)
    const e3 = open()
    assert.deepEqual([e3.record('grant', 'g1'), e3.record('sent', 's1')], [{ scopes: ['chat'] }, { text: 'kept under a day key' }])
    assert.deepEqual(rekeyState(memoryState(), id, undefined, 'x'), { resealed: 0, left: 0, already: false, empty: true })
  })
})
