import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { PeerId } from '@libp2p/interface'
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'
import { METER_NAME } from '@agentmesh/swarm/net'
import { internals } from '@agentmesh/swarm/net/internal'
import { startNet, stopNet, until, collect } from './net-helpers.ts'

interface SchemaEntry { name: string, kind: 'counter' | 'histogram' | 'observable_gauge', unit: string, attributes: string[] }
const schema = JSON.parse(readFileSync(new URL('../metrics-schema.json', import.meta.url), 'utf8')) as { meter: string, metrics: SchemaEntry[] }
const KIND = { counter: 'COUNTER', histogram: 'HISTOGRAM', observable_gauge: 'OBSERVABLE_GAUGE' } as const

class InMemoryReader extends MetricReader {
  protected override async onForceFlush (): Promise<void> {}
  protected override async onShutdown (): Promise<void> {}
}

/** Every metric with at least one data point: name → kind, unit, the attribute key sets seen. */
function emitted (rm: ResourceMetrics): Map<string, { kind: string, unit: string, attributeSets: Set<string> }> {
  const out = new Map<string, { kind: string, unit: string, attributeSets: Set<string> }>()
  for (const sm of rm.scopeMetrics) {
    assert.equal(sm.scope.name, METER_NAME)
    for (const m of sm.metrics) {
      if (m.dataPoints.length === 0) continue
      // the SDK's descriptor carries the instrument type at run time (its declared type leaves it out)
      const kind = (m.descriptor as { type?: string }).type ?? 'unknown'
      const e = out.get(m.descriptor.name) ?? { kind, unit: m.descriptor.unit, attributeSets: new Set<string>() }
      for (const dp of m.dataPoints) e.attributeSets.add(Object.keys(dp.attributes).sort().join(','))
      out.set(m.descriptor.name, e)
    }
  }
  return out
}

test('metrics schema - a real swarm (publish, a forger, a duplicate, a partition and its heal) emits exactly the metrics, kinds, units and attributes metrics-schema.json lists', { timeout: 120_000 }, async () => {
  assert.equal(schema.meter, METER_NAME)
  const reader = new InMemoryReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const N = 6
  const blocked = Array.from({ length: N }, () => new Set<string>())
  const deny = (i: number) => (p: PeerId) => blocked[i]!.has(p.toString())
  // a short seen-cache, so a copy sent again later reaches the validator as a duplicate
  const net = await startNet(N, (i) => ({
    meterProvider,
    connectionGater: { denyDialPeer: deny(i), denyInboundEncryptedConnection: deny(i), denyOutboundEncryptedConnection: deny(i) },
    limits: { seenTtlMs: 50 },
  }))
  const side = (i: number): number => i < N / 2 ? 0 : 1
  try {
    const topic = 'metrics'
    const logs = net.nodes.map(s => collect(s.subscribe(topic)))
    await until(() => net.nodes.every(s => s.peers(topic).some(p => p.mesh)), 15_000, 'meshes')
    const first = signSwarmMessage(net.ids[0]!, { topic, seq: 1, body: 'one' })
    // published through the API (messages_out), then the same bytes again after the seen cache forgot them (duplicates)
    await net.nodes[0]!.publish(topic, 'hello')
    await until(() => logs.every(l => l.length === 1), 15_000, 'the first message everywhere')
    const again = logs[0]![0]!
    const copy = signSwarmMessage(net.ids[0]!, { topic, seq: again.seq, body: again.body, ts: again.ts })
    assert.equal(copy.id, again.id)
    await new Promise(resolve => setTimeout(resolve, 500))
    await internals(net.nodes[1]!).publishRaw(topic, encodeSwarmMessage(copy))
    // a forgery: node 2 sends node 0's message with a changed body (invalid_messages)
    await internals(net.nodes[2]!).publishRaw(topic, encodeSwarmMessage({ ...first, seq: 9, body: 'forged' }))
    // a partition and its heal (partition_detected, partition_healed, convergence_time, reconciled_messages)
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (side(i) !== side(j)) blocked[i]!.add(net.nodes[j]!.peerId)
    let detected = 0
    let converged = 0
    for (const s of net.nodes) { s.on('partition:detected', () => { detected++ }); s.on('partition:converged', () => { converged++ }) }
    await Promise.all(net.nodes.map(async (s, i) => {
      const node = internals(s).node
      await Promise.all(node.getPeers().filter(p => blocked[i]!.has(p.toString())).map(async p => await node.hangUp(p)))
    }))
    await until(() => detected > 0, 15_000, 'a partition')
    await net.nodes[4]!.publish(topic, 'during the cut')
    for (const b of blocked) b.clear()
    await until(() => logs.every(l => l.length === 2) && converged > 0, 30_000, 'the heal and its reconciliation')

    const { resourceMetrics, errors } = await reader.collect()
    assert.deepEqual(errors, [])
    const got = emitted(resourceMetrics)
    assert.deepEqual([...got.keys()].sort(), schema.metrics.map(m => m.name).sort(), 'the emitted metric names are exactly the schema\'s')
    for (const m of schema.metrics) {
      const e = got.get(m.name)!
      assert.equal(e.kind, KIND[m.kind], `${m.name} kind`)
      assert.equal(e.unit, m.unit, `${m.name} unit`)
      assert.deepEqual([...e.attributeSets], [[...m.attributes].sort().join(',')], `${m.name} attributes`)
    }
  } finally {
    await stopNet(net)
    await meterProvider.shutdown()
  }
})
