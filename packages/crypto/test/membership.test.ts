import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  createIdentity, extendMembership, membershipHash, pinMembership, signMembership, verifyMembershipChain, verifyMembershipStatement,
  type MembershipStatement,
} from '@agentmesh/crypto'

const [owner, bob, carol, mallory] = [createIdentity('owner'), createIdentity('bob'), createIdentity('carol'), createIdentity('mallory')]
const T = 1_763_900_000_000

const refused = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => AgentMeshError.is(e, ErrorCode.MembershipUnsigned) && re.test(e.message))
}

/** genesis by the owner, bob added, bob named admin, carol added by bob */
function chain (): MembershipStatement[] {
  const g = signMembership(owner, { room: 'ops', op: 'create', agent: owner.amid, at: T })
  const addBob = signMembership(owner, { room: 'ops', op: 'add', agent: bob.amid, after: g, at: T + 1 })
  const admin = signMembership(owner, { room: 'ops', op: 'admin', agent: bob.amid, after: addBob, at: T + 2 })
  const addCarol = signMembership(bob, { room: 'ops', op: 'add', agent: carol.amid, after: admin, at: T + 3 })
  return [g, addBob, admin, addCarol]
}

describe('membership statements', () => {
  it('membership - a chain from the owner\'s genesis proves its members, who added each, and the admins', () => {
    const c = chain()
    const v = verifyMembershipChain('ops', c)
    assert.equal(v.owner, owner.amid)
    assert.deepEqual([...v.members].map(([a, m]) => [a, m.by, m.seq]), [[owner.amid, owner.amid, 0], [bob.amid, owner.amid, 1], [carol.amid, bob.amid, 3]])
    assert.deepEqual([...v.admins], [bob.amid])
    assert.deepEqual(v.head, { seq: 3, hash: membershipHash(c[3]!) })
    // a JSON round trip, keys in another order, verifies the same
    const reordered = c.map(s => Object.fromEntries(Object.entries(JSON.parse(JSON.stringify(s)) as Record<string, unknown>).reverse()))
    assert.deepEqual(verifyMembershipChain('ops', reordered).head, v.head)
    // a member leaves (signed by itself); the owner removes another
    const leave = signMembership(carol, { room: 'ops', op: 'leave', agent: carol.amid, after: c[3]!, at: T + 4 })
    const remove = signMembership(owner, { room: 'ops', op: 'remove', agent: bob.amid, after: leave, at: T + 5 })
    const after = verifyMembershipChain('ops', [...c, leave, remove])
    assert.deepEqual([...after.members.keys()], [owner.amid])
    assert.deepEqual([...after.admins], [])
  })

  it('membership - a forged, altered, misplaced or unauthorised statement is AM_ERR_MEMBERSHIP_UNSIGNED naming what failed', () => {
    const c = chain()
    const [g, addBob, admin] = c as [MembershipStatement, MembershipStatement, MembershipStatement, MembershipStatement]
    refused(() => verifyMembershipStatement({ ...addBob, agent: mallory.amid }), /signature does not verify/)
    refused(() => verifyMembershipStatement({ ...addBob, extra: 1 }), /unknown field extra/)
    refused(() => verifyMembershipStatement({ ...addBob, sig: 'x' }), /sig is not/)
    refused(() => verifyMembershipChain('ops', []), /no signed membership/)
    refused(() => verifyMembershipChain('other', c), /chain is of room ops/)
    // someone who is neither the owner nor an admin adds (the operator's agent, a master: no role counts)
    refused(() => verifyMembershipChain('ops', [g, signMembership(mallory, { room: 'ops', op: 'add', agent: mallory.amid, after: g })]), /neither the owner nor an admin/)
    // a genesis not signed by the owner it names
    refused(() => verifyMembershipChain('ops', [{ ...signMembership(mallory, { room: 'ops', op: 'create', agent: mallory.amid }), agent: owner.amid }]), /signature|signed by the owner/)
    // statements out of order, skipped, or replayed
    refused(() => verifyMembershipChain('ops', [g, admin]), /does not follow/)
    refused(() => verifyMembershipChain('ops', [g, addBob, addBob]), /does not follow/)
    // an admin names no admins and does not remove the owner
    refused(() => verifyMembershipChain('ops', [...c, signMembership(bob, { room: 'ops', op: 'admin', agent: carol.amid, after: c[3]! })]), /only the owner names admins/)
    refused(() => verifyMembershipChain('ops', [...c, signMembership(bob, { room: 'ops', op: 'remove', agent: owner.amid, after: c[3]! })]), /owner cannot be removed/)
    // a leave signed by someone else
    refused(() => verifyMembershipChain('ops', [...c, signMembership(owner, { room: 'ops', op: 'leave', agent: carol.amid, after: c[3]! })]), /signed by the member who leaves/)
    refused(() => signMembership(owner, { room: 'ops', op: 'add', agent: bob.amid }), /genesis \(seq 0\), and only it, is a create/)
  })

  it('membership - extending a pinned chain: the genesis and the pinned head must stay; a swapped or rewritten chain is refused', () => {
    const c = chain()
    const pin = pinMembership(verifyMembershipChain('ops', c.slice(0, 2)))
    const r = extendMembership('ops', c, pin)
    assert.deepEqual(r.added.map(s => [s.op, s.agent]), [['admin', bob.amid], ['add', carol.amid]])
    assert.equal(r.state.members.size, 3)
    // the relay swaps in a room of its own
    const g2 = signMembership(mallory, { room: 'ops', op: 'create', agent: mallory.amid })
    refused(() => extendMembership('ops', [g2, signMembership(mallory, { room: 'ops', op: 'add', agent: bob.amid, after: g2 })], pin), /genesis is not the one this agent pinned/)
    // the relay serves a shorter chain, or another statement at the pinned head
    refused(() => extendMembership('ops', c.slice(0, 1), pin), /before statement 1/)
    const other = signMembership(owner, { room: 'ops', op: 'add', agent: carol.amid, after: c[0]! })
    refused(() => extendMembership('ops', [c[0]!, other], pin), /statement 1 is not the one this agent verified/)
  })
})
