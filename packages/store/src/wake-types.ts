/**
 * The wake-up slice of the Store (docs/protocol.md §26): each agent's wake webhook, the URL the
 * relay POSTs a content-free "you have N messages" notice to while the agent has no open
 * connection. One row per agent, replaced by the next registration.
 */

/** An agent's wake webhook as the relay keeps it. */
export interface WebhookRecord {
  amid: string
  /** an https:// (or, on a relay that allows it, http://) URL, checked when registered */
  url: string
  /** ms since the epoch */
  createdAt: number
}

export interface WebhookStore {
  /** Registers (or replaces) an agent's wake webhook. */
  putWebhook (rec: WebhookRecord): Promise<void>
  /** An agent's wake webhook; undefined when it has none. */
  getWebhook (amid: string): Promise<WebhookRecord | undefined>
  /** Removes an agent's wake webhook; whether it had one. */
  deleteWebhook (amid: string): Promise<boolean>
}
