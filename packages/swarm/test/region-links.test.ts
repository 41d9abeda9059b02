import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { chooseLinks, encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { DecodeCache } from '../src/net/msg-id.ts'
import { swarmLimits } from '../src/net/options.ts'
import {
  decideLink, linkScope, parseGossipTopic, peerValue, pickRegion, regionOfAgent, regionTopic, type RegionMember,
} from '../src/net/region-links.ts'

const ids = Array.from({ length: 12 }, (_, i) => `12D3KooWnode${String(i).padStart(2, '0')}`)
const view = (xs: readonly string[], over: Partial<Record<string, Partial<RegionMember>>> = {}): RegionMember[] =>
  xs.map(id => ({ id, connected: true, score: 0, ...over[id] }))
const scope = linkScope('ops', 'eu-1')

test('region links - internal topic names: <topic>#region/<r>, parsed back; a public topic has no region', () => {
  assert.equal(regionTopic('ops', 'eu-1'), 'ops#region/eu-1')
  assert.deepEqual(parseGossipTopic('ops#region/eu-1'), { topic: 'ops', region: 'eu-1' })
  assert.deepEqual(parseGossipTopic('a/b:c'), { topic: 'a/b:c' })
  assert.equal(linkScope('ops', 'eu-1'), 'ops/region/eu-1')
})

test('region links - every node with the full view elects the same k links, and exactly those nodes say link', () => {
  const expected = chooseLinks(scope, ids, 3)
  assert.equal(expected.length, 3)
  const says = ids.filter(self => decideLink(scope, self, view(ids.filter(x => x !== self)), 3).link)
  assert.deepEqual([...says].sort(), [...expected].sort())
  for (const self of ids) assert.deepEqual(decideLink(scope, self, view(ids), 3).links, expected)
})

test('region links - a failed link (disconnected or score < 0) is replaced by the next-ranked node; the other links stay', () => {
  const ranked = chooseLinks(scope, ids, ids.length)
  const [first, second, third, fourth] = ranked as [string, string, string, string]
  const observer = ranked[ranked.length - 1]!
  for (const over of [{ [second]: { connected: false } }, { [second]: { score: -0.5 } }]) {
    const d = decideLink(scope, observer, view(ids.filter(x => x !== observer), over), 3)
    assert.deepEqual(d.links, [first, third, fourth])
    assert.equal(d.link, false)
    assert.equal(d.healthy, ids.length - 1)
  }
  // the fourth-ranked node itself takes over once it no longer sees the second
  assert.equal(decideLink(scope, fourth, view(ids.filter(x => x !== fourth && x !== second)), 3).link, true)
  assert.equal(decideLink(scope, fourth, view(ids.filter(x => x !== fourth)), 3).link, false)
})

test('region links - a partial view errs towards more links: a node that sees no higher-ranked member elects itself', () => {
  const ranked = chooseLinks(scope, ids, ids.length)
  const low = ranked[ranked.length - 1]!
  assert.deepEqual(decideLink(scope, low, [], 3), { link: true, links: [low], healthy: 1 })
  // it sees only two others: it is among the top 3 of its view
  assert.equal(decideLink(scope, low, view([ranked[0]!, ranked[1]!]), 3).link, true)
  assert.equal(decideLink(scope, low, view(ranked.slice(0, 3)), 3).link, false)
  // a duplicate of itself in the view counts once
  assert.equal(decideLink(scope, low, view([low, ranked[0]!]), 3).healthy, 2)
})

test('region links - auto region: the lowest-RTT peers vote, ties go to the fastest, auto and invalid regions do not vote, fallback default', () => {
  assert.equal(pickRegion([]), 'default')
  assert.equal(pickRegion([], 'x'), 'x')
  assert.equal(pickRegion([{ region: 'us', rttMs: 90 }, { region: 'eu', rttMs: 5 }]), 'eu')
  // the three fastest: eu 5, us 6, us 7 → us (two votes); the slow eu peers do not vote
  assert.equal(pickRegion([{ region: 'eu', rttMs: 5 }, { region: 'us', rttMs: 6 }, { region: 'us', rttMs: 7 }, { region: 'eu', rttMs: 50 }, { region: 'eu', rttMs: 60 }]), 'us')
  // one vote each: the fastest wins
  assert.equal(pickRegion([{ region: 'ap', rttMs: 9 }, { region: 'us', rttMs: 4 }, { region: 'eu', rttMs: 6 }]), 'us')
  assert.equal(pickRegion([{ region: 'auto', rttMs: 1 }, { region: 'Bad!', rttMs: 1 }, { region: 'eu', rttMs: NaN }]), 'default')
  assert.equal(pickRegion([{ region: 'auto', rttMs: 1 }, { region: 'eu', rttMs: 40 }]), 'eu')
})

test('region links - agent strings: the region of agentmesh-swarm/1 only, bounded pattern', () => {
  assert.equal(regionOfAgent('agentmesh-swarm/1 region=eu-1'), 'eu-1')
  assert.equal(regionOfAgent('agentmesh-swarm/1 region=default'), 'default')
  assert.equal(regionOfAgent('agentmesh/1 region=eu'), undefined)
  assert.equal(regionOfAgent('agentmesh-swarm/1 region=EU'), undefined)
  assert.equal(regionOfAgent(`agentmesh-swarm/1 region=${'a'.repeat(33)}`), undefined)
  assert.equal(regionOfAgent(undefined), undefined)
})

test('region links - peer value: nearer is worth more, a region-mate 50 more, unknown RTT counts as far', () => {
  assert.equal(peerValue(0, false), 49)
  assert.equal(peerValue(50, false), 25)
  assert.equal(peerValue(undefined, false), 0)
  assert.equal(peerValue(undefined, true), 50)
  assert.equal(peerValue(0, true), 99)
  assert.ok(peerValue(10, false) > peerValue(200, false))
  assert.ok(peerValue(500, true) > peerValue(0, false))
  assert.ok(peerValue(1e9, true) >= 50 && peerValue(0, false) < 50)
})

test('region links - gossip ids: unchanged on the public topic, one per internal topic (so a link can publish the same bytes across)', () => {
  const me = createIdentity()
  const data = encodeSwarmMessage(signSwarmMessage(me, { topic: 'ops', seq: 1, body: 'x' }))
  const c = new DecodeCache(64 * 1024)
  const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex')
  const pub = hex(c.msgId(data))
  assert.equal(pub, hex(new DecodeCache(64 * 1024).msgId(new Uint8Array(data))))
  const eu = hex(c.msgId(data, 'ops#region/eu'))
  const us = hex(c.msgId(data, 'ops#region/us'))
  assert.equal(new Set([pub, eu, us]).size, 3)
  assert.equal(eu, hex(c.msgId(data, 'ops#region/eu')))
  assert.equal(c.msgId(data, 'ops#region/eu').byteLength, 20)
})

test('region links - options: regionLinks an integer from 1, checked before any I/O with AM_ERR_INVALID_ARGUMENT', () => {
  assert.equal(swarmLimits(undefined).regionLinks, 3)
  assert.equal(swarmLimits({ regionLinks: 1 }).regionLinks, 1)
  for (const regionLinks of [0, 1.5]) {
    assert.throws(() => swarmLimits({ regionLinks }), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidArgument) && /regionLinks/.test(err.message))
  }
  assert.throws(() => swarmLimits({ rttTagRounds: 0 }), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidArgument) && /rttTagRounds/.test(err.message))
})
