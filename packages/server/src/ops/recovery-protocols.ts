/**
 * The four recovery protocols (docs/protocol.md §20, docs/operations.md) as structured steps, served
 * at GET /api/v1/catastrophe/protocols. Each step says who carries it out and, where one exists,
 * the command that does it: these are what the relay, the SDK and the CLI actually do.
 */
import type { CatastropheType, RecoveryProtocol, RecoveryProtocolId, Static } from '@agentmesh/protocol'
import type { RecoveryStep } from '@agentmesh/protocol'

type Step = Static<typeof RecoveryStep>
const steps = (...s: Array<Omit<Step, 'order'>>): Step[] => s.map((x, i) => ({ order: i + 1, ...x }))

export const RECOVERY_PROTOCOLS: readonly RecoveryProtocol[] = [
  {
    id: 'server-crash',
    title: 'Server crash',
    eventTypes: ['server_down', 'api_crash'],
    steps: steps(
      { who: 'supervisor', action: 'Restart the relay (systemd Restart=on-failure, or a container restart policy: docs/operations.md).', command: 'systemctl restart agentmesh' },
      { who: 'relay', action: 'At start, find the run marker a clean shutdown would have cleared, and report a server_down event (reportedBy "relay").' },
      { who: 'relay', action: 'Send a catastrophe_alert to every agent as it reconnects, ahead of its backlog, while the event is not resolved.' },
      { who: 'sdk', action: 'Reconnect with backoff, resume from the cursor and send the outbox again (same ids: the relay acks duplicates, stores nothing twice).' },
      { who: 'operator', action: 'Check the database and the audit chain.', command: 'agentmesh check' },
      { who: 'operator', action: 'Resolve the event with notes.', command: 'agentmesh catastrophe resolve <id> --notes "…"' },
    ),
  },
  {
    id: 'database-corruption',
    title: 'Database corruption',
    eventTypes: ['db_corruption'],
    steps: steps(
      { who: 'relay', action: 'On a damaged-database error (SQLITE_CORRUPT, SQLITE_NOTADB) while running, enter read-only mode: reads and history work, writes are refused with AM_ERR_READ_ONLY; report a db_corruption event. At start, a file failing PRAGMA quick_check is refused with AM_ERR_DATA_CORRUPT (no crash loop: the supervisor stops after its burst limit).' },
      { who: 'agent', action: 'Sends are refused with AM_ERR_READ_ONLY (nothing stored; the SDK rejects the send): send them again after the restore. Reads and history keep working.' },
      { who: 'operator', action: 'Confirm: integrity check and audit chain verification of the database.', command: 'agentmesh check' },
      { who: 'operator', action: 'Stop the relay, then restore the newest good backup (scheduled ones are in <data>/backups/; the file is checked before anything is replaced, the damaged one kept aside).', command: 'agentmesh restore <data>/backups/agentmesh-….db' },
      { who: 'operator', action: 'Start the relay, then resolve the event with notes.', command: 'agentmesh catastrophe resolve <id> --notes "…"' },
      { who: 'operator', action: 'Take backups ahead of time: scheduled (backupIntervalMs, backupKeep) and on demand while the relay serves.', command: 'agentmesh backup --out FILE' },
    ),
  },
  {
    id: 'network-partition',
    title: 'Network partition',
    eventTypes: ['network_partition'],
    steps: steps(
      { who: 'sdk', action: 'Detect the relay is gone (no pong within the heartbeat timeout): the connection status turns reconnecting (conn.status()).' },
      { who: 'sdk', action: 'Keep sends in the outbox (durable, in order) while reconnecting; the status shows how many are waiting.' },
      { who: 'agent', action: 'Watch the status.', command: 'agentmesh status' },
      { who: 'sdk', action: 'When the relay answers again, authenticate, resume from the cursor and send the outbox in order; the relay dedupes by id.' },
      { who: 'operator', action: 'Resolve the event once agents are back.', command: 'agentmesh catastrophe resolve <id> --notes "…"' },
    ),
  },
  {
    id: 'breaking-update',
    title: 'Breaking update',
    // no catastrophe type of its own: a system update with breakingChange (§19) carries it out
    eventTypes: [],
    steps: steps(
      { who: 'operator', action: 'Announce the update with breakingChange and requiredVersion (a system_update event, durable: offline agents get it when they reconnect).', command: 'agentmesh update create …' },
      { who: 'agent', action: 'Acknowledge (accepted, rejected, completed) with the version it runs.', command: 'agentmesh update ack <id> --status completed' },
      { who: 'relay', action: 'After the deadline, refuse sends from agents below the required version with a code naming the version and the update.' },
      { who: 'operator', action: 'Watch adoption: who has not answered, the versions reported.', command: 'agentmesh update acks <id>' },
    ),
  },
]

/** The protocol a report names by default, for its event type. */
export function defaultProtocolFor (t: CatastropheType): RecoveryProtocolId {
  switch (t) {
    case 'server_down': return 'server-crash'
    case 'api_crash': return 'server-crash'
    case 'db_corruption': return 'database-corruption'
    case 'network_partition': return 'network-partition'
  }
}
