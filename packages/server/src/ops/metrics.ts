/**
 * The relay's metrics for Prometheus (docs/protocol.md §21.5), with prom-client: one registry per
 * relay, the core's figures read when scraped (its counters, the Store's pending count), the
 * commit times and error codes heard on the event bus, and what features register through
 * `gauge` / `counter` (files, updates, events…).
 *
 * Cheap by construction: nothing here runs per message. The core already counts (`RelayStats`);
 * a scrape reads those counters. Commit times are one `store:committed` event per group commit
 * (one per event-loop turn), errors one `error:answered` event per error answer, both emitted only
 * while someone listens. No label takes an unbounded value (never an AMID): error codes are the
 * registry's, statuses a fixed list.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { isErrorCode } from '@agentmesh/protocol'
import type { Store } from '@agentmesh/store'
import type { EventBus } from '../events.ts'
import type { RelayStats } from '../relay.ts'

/** A metric's name: Prometheus' grammar, under the relay's prefix. */
const NAME = /^agentmesh_[a-z_][a-z0-9_]*$/

/** One labelled sample of a collected metric. */
export interface MetricSample { labels?: Record<string, string>, value: number }
/** What a collected metric answers when scraped: a number, or labelled samples (bounded label values only). */
export type Collect = () => number | MetricSample[] | Promise<number | MetricSample[]>

/**
 * What a feature may add to the relay's metrics. Names start with `agentmesh_`; a counter's name
 * ends with `_total`. `collect` runs at each scrape: read a figure you keep (a counter you
 * increment, a count the Store answers), never scan per message.
 */
export interface RelayMetrics {
  /** A value that goes up and down (files stored, updates pending), read at each scrape. */
  gauge (name: string, help: string, collect: Collect, labelNames?: readonly string[]): void
  /** A total that only grows (events sent), read at each scrape. */
  counter (name: string, help: string, collect: Collect, labelNames?: readonly string[]): void
  /** The metrics as Prometheus text. */
  text (): Promise<string>
  /** The media type of `text()`. */
  readonly contentType: string
  /** prom-client's registry, for a metric kind the two above do not cover (a histogram). */
  readonly registry: Registry
}

export interface RelayMetricsInit {
  /** the core's counters (RelayCore.stats) */
  stats: () => RelayStats
  store: Store
  events: EventBus
}

/** Store commit time buckets, in seconds: 0.25 ms to 2.5 s. */
export const COMMIT_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

function checkName (name: string, counter: boolean): void {
  if (!NAME.test(name)) throw new RangeError(`metric name ${name} must match ${NAME.source}`)
  if (counter !== name.endsWith('_total')) throw new RangeError(`metric ${name}: a counter's name ends with _total, and only a counter's`)
}

/** Sets a metric from what `collect` answered. */
function apply (m: { set: (v: number) => void, labels: (l: Record<string, string>) => { set: (v: number) => void }, reset: () => void }, got: number | MetricSample[]): void {
  if (typeof got === 'number') { m.set(got); return }
  m.reset()
  for (const s of got) {
    if (s.labels === undefined) m.set(s.value)
    else m.labels(s.labels).set(s.value)
  }
}

/** The audit actions `agentmesh_operations_total` counts (a label takes no other value). */
const OPERATION_ACTIONS = new Set(['file.upload', 'file.delete', 'update.create', 'update.ack', 'catastrophe.report', 'catastrophe.recovering', 'catastrophe.resolve', 'backup.taken', 'health.change'])

export function relayMetrics (init: RelayMetricsInit): RelayMetrics {
  const registry = new Registry()
  const metrics: RelayMetrics = {
    registry,
    contentType: registry.contentType,
    gauge (name, help, collect, labelNames = []) {
      checkName(name, false)
      // eslint-disable-next-line no-new
      new Gauge({ name, help, labelNames: [...labelNames], registers: [registry], async collect () { apply(this, await collect()) } })
    },
    counter (name, help, collect, labelNames = []) {
      checkName(name, true)
      // prom-client's Counter only grows by inc(): a collected total is written as a reset and one inc
      const setter = (c: Counter): Parameters<typeof apply>[0] => ({
        set: (v) => { c.inc(Math.max(0, v)) },
        labels: (l) => ({ set: (v) => { c.labels(l).inc(Math.max(0, v)) } }),
        reset: () => { c.reset() },
      })
      // eslint-disable-next-line no-new
      new Counter({ name, help, labelNames: [...labelNames], registers: [registry], async collect () { const got = await collect(); this.reset(); apply(setter(this), got) } })
    },
    async text () { return await registry.metrics() },
  }

  const { stats, store, events } = init
  // one look at the core per scrape, shared by the figures read from it
  let snapshot: { at: number, s: RelayStats } | undefined
  const core = (): RelayStats => {
    const now = Date.now()
    if (snapshot === undefined || now - snapshot.at > 250) snapshot = { at: now, s: stats() }
    return snapshot.s
  }
  metrics.gauge('agentmesh_connections', 'WebSocket connections open on this relay node', () => core().connections)
  metrics.gauge('agentmesh_agents_online', 'Agents with at least one connection to this node', () => core().agentsOnline)
  metrics.counter('agentmesh_messages_received_total', 'Envelopes received from agents over the WebSocket (messages in)', () => core().received)
  metrics.counter('agentmesh_messages_delivered_total', 'Deliveries written to agents\' connections, inbox and room (messages out)', () => core().delivered)
  metrics.counter('agentmesh_messages_duplicate_total', 'Sends acknowledged as duplicates (same sender and id), not stored again', () => core().duplicates)
  metrics.counter('agentmesh_messages_rejected_total', 'Frames refused with an error', () => core().rejected)
  metrics.counter('agentmesh_store_commits_total', 'Group commits to the Store', () => core().commits)
  metrics.counter('agentmesh_slow_consumers_total', 'Connections closed because they stopped reading', () => core().slowConsumers)
  metrics.counter('agentmesh_events_dropped_total', 'Event frames not written to a connection over its send buffer', () => core().eventsDropped)
  metrics.gauge('agentmesh_send_queue_bytes', 'Bytes queued for all connections, not yet taken by the network', () => core().queuedBytes)
  metrics.gauge('agentmesh_paused_connections', 'Connections whose deliveries are paused (over their send buffer)', () => core().pausedConnections)
  // the Store's figures once per scrape (a count query): never per message
  let storeStats: Promise<{ agents: number, pending: number }> | undefined
  const fromStore = async (): Promise<{ agents: number, pending: number }> => {
    storeStats ??= store.stats().finally(() => { setTimeout(() => { storeStats = undefined }, 250).unref() })
    return await storeStats
  }
  metrics.gauge('agentmesh_inbox_pending_messages', 'Messages stored and not yet acknowledged, over every inbox (the inboxes\' depth)', async () => (await fromStore()).pending)
  metrics.gauge('agentmesh_agents_registered', 'Agents registered on the relay', async () => (await fromStore()).agents)

  let acks = 0
  const commitSeconds = new Histogram({ name: 'agentmesh_store_commit_seconds', help: 'Time of a group commit to the Store, in seconds', buckets: COMMIT_BUCKETS, registers: [registry] })
  events.on('store:committed', (e) => {
    commitSeconds.observe(e.seconds)
    acks += e.acks
  })
  metrics.counter('agentmesh_acks_total', 'Cursor acknowledgements committed (inbox and room cursors)', () => acks)
  const errors = new Counter({ name: 'agentmesh_errors_total', help: 'Error answers by code, over the WebSocket (ws) and REST (rest)', labelNames: ['code', 'via'], registers: [registry] })
  events.on('error:answered', (e) => { errors.labels({ code: isErrorCode(e.code) ? e.code : 'other', via: e.via }).inc() })
  // the operations' writes (files, updates, catastrophe events, backups, health changes), counted by their audit action: a fixed set
  const operations = new Counter({ name: 'agentmesh_operations_total', help: 'Operations writes by action (file.upload, file.delete, update.create, update.ack, catastrophe.report, catastrophe.recovering, catastrophe.resolve, backup.taken, health.change)', labelNames: ['action'], registers: [registry] })
  events.on('audit:written', (e) => { if (OPERATION_ACTIONS.has(e.action)) operations.labels({ action: e.action }).inc() })
  return metrics
}

/** The core's counters, all zero: for an app served with no core behind it (in-process tests, httpApp alone). */
export function zeroStats (): RelayStats {
  return { connections: 0, agentsOnline: 0, received: 0, delivered: 0, duplicates: 0, rejected: 0, commits: 0, slowConsumers: 0, errorsLeftOut: 0, errorFloods: 0, pauses: 0, eventsDropped: 0, queuedBytes: 0, pausedConnections: 0 }
}
