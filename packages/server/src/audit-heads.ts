/**
 * Signed heads of the audit log (docs/protocol.md §17.8). The relay signs `{seq, hash, at}` of the
 * newest audit row with its own identity every `auditHeadEveryRows` rows or `auditHeadIntervalMs`
 * (when the chain moved), at start and on shutdown, and hands each head to an `AuditHeadLog`: kept
 * outside the Store (the CLI's `serve` appends them to `<data>/audit-heads.jsonl`, fsync'd), so
 * that deleting the newest rows, or rewriting one and re-chaining the rest, is found by a verifier
 * given the newest head. GET /api/v1/audit/heads answers them so an auditor can keep copies.
 */
import { signAuditHead, verifyAuditHead, type AuditHead, type Identity } from '@agentmesh/crypto'
import type { Store } from '@agentmesh/store'
import type { Logger } from './log.ts'

export type { AuditHead }

/** Where signed heads are kept: appended durably, listed oldest first. */
export interface AuditHeadLog {
  /** Appends a signed head; resolves once it is durable. */
  append (head: AuditHead): void | Promise<void>
  /** The heads kept, oldest first (a log may keep only the newest ones). */
  list (): readonly AuditHead[] | Promise<readonly AuditHead[]>
}

/** Heads kept in memory (the newest `max`): the default, for a relay whose Store is memory too. */
export function memoryAuditHeads (max = 10_000): AuditHeadLog {
  const heads: AuditHead[] = []
  return {
    append (h) { heads.push(h); if (heads.length > max) heads.splice(0, heads.length - max) },
    list () { return heads },
  }
}

/** The heads of `heads` signed by `relay` whose signatures verify, in their order. */
export function validHeads (heads: readonly unknown[], relay?: string): AuditHead[] {
  return heads.filter((h): h is AuditHead => verifyAuditHead(h, relay))
}

/** The newest head of `heads` signed by `relay` whose signature verifies, or undefined. */
export function newestValidHead (heads: readonly unknown[], relay?: string): AuditHead | undefined {
  for (let i = heads.length - 1; i >= 0; i--) {
    const h = heads[i]
    if (verifyAuditHead(h, relay)) return h
  }
  return undefined
}

/** Sign a head after this many new audit rows (checked every second). @default 1000 */
export const DEFAULT_AUDIT_HEAD_EVERY_ROWS = 1000
/** Sign a head at least this often while the chain moves, in ms. @default 60 s */
export const DEFAULT_AUDIT_HEAD_INTERVAL_MS = 60_000
/** How often the signer looks at the chain's newest row. */
export const AUDIT_HEAD_CHECK_MS = 1000

/** Signs heads of `store`'s audit chain with `relay` into `log`. */
export class AuditHeadSigner {
  private signed: { seq: number, hash: string, at: number } | undefined
  private timer: NodeJS.Timeout | undefined
  private busy: Promise<void> = Promise.resolve()

  constructor (
    private readonly store: Pick<Store, 'lastAudit'>,
    private readonly relay: Identity,
    private readonly log: AuditHeadLog,
    private readonly logger: Logger,
    private readonly opts: { everyRows: number, intervalMs: number, now?: () => number },
  ) {}

  /** Signs the current head (when it moved since the last one), then every second checks whether another is due. */
  async start (): Promise<void> {
    const last = newestValidHead(await this.log.list(), this.relay.amid)
    if (last !== undefined) this.signed = { seq: last.seq, hash: last.hash, at: last.at }
    await this.sign(true)
    this.timer = setInterval(() => { void this.sign(false) }, AUDIT_HEAD_CHECK_MS).unref()
  }

  /** Stops the timer and signs the final head (on shutdown, after the last commit). */
  async stop (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.sign(true)
  }

  /**
   * Signs a head now if the chain is not the one last signed (`force`: at start and on shutdown;
   * also after a loss accepted at start, when the chain is shorter than the last head), or when
   * one is due by rows or time.
   */
  sign (force: boolean): Promise<void> {
    this.busy = this.busy.then(async () => {
      try {
        const last = await this.store.lastAudit()
        if (last === undefined) return
        const now = (this.opts.now ?? Date.now)()
        const prev = this.signed
        if (prev !== undefined && last.seq === prev.seq && last.hash === prev.hash) return
        const due = force || prev === undefined || last.seq < prev.seq || last.seq - prev.seq >= this.opts.everyRows || now - prev.at >= this.opts.intervalMs
        if (!due) return
        const head = signAuditHead(this.relay, { seq: last.seq, hash: last.hash, at: now })
        await this.log.append(head)
        this.signed = { seq: head.seq, hash: head.hash, at: head.at }
      } catch (err) {
        this.logger.error({ err }, 'signing the audit head failed')
      }
    })
    return this.busy
  }
}
