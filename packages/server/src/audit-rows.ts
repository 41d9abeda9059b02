/**
 * Audit rows the relay writes for what passes through it (metadata only: never a payload).
 */
import type { Envelope } from '@agentmesh/protocol'
import type { AuditInput } from '@agentmesh/store'

/** The audit row of a send: who, to whom, which envelope, its type and size (and `via` for REST posts). */
export function sendAudit (env: Envelope, bytes: number, at: number, via?: string): AuditInput {
  return {
    at,
    actor: env.from,
    action: 'message.send',
    target: env.to,
    detail: { id: env.id, type: env.type, bytes, ...(via === undefined ? {} : { via }) },
  }
}
