/**
 * The owner-link slice (docs/protocol.md §28): an agent's owner proved an identity with the relay's
 * OpenID Connect provider and the agent signed the link. One link per agent; it gives the agent the
 * verified tier while it is stored.
 */

/** A verified owner identity linked to an agent, with the agent's signature over the statement. */
export interface OwnerLinkRecord {
  amid: string
  /** the provider's issuer URL */
  issuer: string
  /** the owner's subject at the provider (the id token's `sub`) */
  subject: string
  /** the owner's name as the provider gave it, if any (shown, untrusted text) */
  name?: string
  /** the owner's e-mail address as the provider gave it, when it said it is verified */
  email?: string
  /** the relay's AMID the statement names */
  relay: string
  /** the statement's time (ms since epoch), signed */
  ts: number
  /** base64url Ed25519 signature of the agent over the statement */
  sig: string
  /** when the relay stored it (ms since epoch) */
  linkedAt: number
}

export interface OwnerStore {
  /** Stores the agent's link, replacing the one it had. */
  putOwnerLink (link: OwnerLinkRecord): Promise<void>
  getOwnerLink (amid: string): Promise<OwnerLinkRecord | undefined>
  /** Removes the agent's link; false when it had none. */
  deleteOwnerLink (amid: string): Promise<boolean>
  /** How many agents link to this owner identity. */
  countOwnerLinks (issuer: string, subject: string): Promise<number>
}
