/**
 * Agents and their handles (§17.1) and roles: which agents the relay knows (every one is in the
 * global room), handles cached (least recently used go first; other nodes' changes drop them).
 */
import { AgentMeshError, ErrorCode, isReservedHandle } from '@agentmesh/protocol'
import { isAmid } from '@agentmesh/crypto'
import { LruMap } from '@agentmesh/protocol/internal'
import type { AgentRole } from '@agentmesh/store'
import type { ChatContext } from './context.ts'
import { HANDLE_PATTERN, type Principal } from './types.ts'

/** Handles kept in memory (an agent without one is cached as null). @default 100,000 */
export const MAX_CACHED_HANDLES = 100_000

export class Handles {
  /** every registered agent: the global room's members */
  private readonly agents = new Set<string>()
  private readonly handles = new LruMap<string, string | null>(MAX_CACHED_HANDLES)

  constructor (private readonly ctx: ChatContext) {}

  /** Reads the agent list from the Store. */
  async load (): Promise<void> {
    let after: string | undefined
    for (;;) {
      const page = await this.ctx.store.listAgents({ ...(after === undefined ? {} : { after }), limit: 1000 })
      for (const a of page) this.agents.add(a)
      if (page.length < 1000) break
      after = page[page.length - 1]
    }
  }

  /** Every registered agent. */
  all (): ReadonlySet<string> { return this.agents }

  /** Another node changed this agent's handle. */
  forgetHandle (amid: string): void { this.handles.delete(amid) }

  /** The backplane may have lost changes: every cached handle is read again, and agents registered elsewhere are added. */
  async forgetAll (): Promise<void> {
    this.handles.clear()
    await this.load()
  }

  /** A newly authenticated agent (it is a member of the global room from now on). */
  noteAgent (amid: string): void { this.agents.add(amid) }

  isAgent (amid: string): boolean { return this.agents.has(amid) }

  async handleOf (amid: string): Promise<string | undefined> {
    const cached = this.handles.get(amid)
    if (cached !== undefined) return cached ?? undefined
    const h = await this.ctx.store.handleOf(amid)
    this.handles.set(amid, h ?? null)
    return h
  }

  async setHandle (p: Principal, amid: string, handle: unknown): Promise<{ amid: string, handle: string, previous?: string }> {
    if (typeof handle !== 'string' || !HANDLE_PATTERN.test(handle)) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'a handle is 2–32 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit')
    }
    // compared by confusable skeleton: reIay, re1ay and RELAY are relay (docs/protocol.md §17.1)
    if (isReservedHandle(handle)) throw new AgentMeshError(ErrorCode.InvalidArgument, `the handle "${handle}" is reserved or looks like a reserved name; choose another`)
    if (!this.agents.has(amid)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${amid} is registered on this relay`)
    const r = await this.ctx.store.setHandle(amid, handle)
    if (r.status === 'taken') {
      throw new AgentMeshError(ErrorCode.HandleTaken, r.by === amid ? `you hold "${handle}" already` : `the handle "${handle}" is taken by another agent, or looks like one it holds; choose another`)
    }
    this.handles.set(amid, handle)
    this.ctx.invalidate('handle', amid)
    await this.ctx.audit(p, 'handle.set', amid, { handle, ...(r.previous === undefined ? {} : { previous: r.previous }) })
    return { amid, handle, ...(r.previous === undefined ? {} : { previous: r.previous }) }
  }

  /** An AMID, or `@handle` (or a bare handle) resolved to its AMID. */
  async resolveAgent (ref: unknown, what = 'agent'): Promise<string> {
    if (typeof ref !== 'string' || ref === '') throw new AgentMeshError(ErrorCode.InvalidArgument, `${what} must be an AMID or @handle`)
    if (isAmid(ref)) {
      if (!this.agents.has(ref)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${ref} is registered on this relay; it registers by connecting once`)
      return ref
    }
    const h = ref.startsWith('@') ? ref.slice(1) : ref
    if (!HANDLE_PATTERN.test(h)) throw new AgentMeshError(ErrorCode.InvalidArgument, `${what} "${ref.slice(0, 80)}" is neither an AMID nor a @handle`)
    const amid = await this.ctx.store.resolveHandle(h)
    if (amid === undefined) throw new AgentMeshError(ErrorCode.UnknownHandle, `no agent has the handle @${h}`)
    return amid
  }

  async setRole (p: Principal, amid: string, role: unknown): Promise<{ amid: string, role: AgentRole }> {
    if (role !== 'master' && role !== 'warden' && role !== 'worker') throw new AgentMeshError(ErrorCode.InvalidArgument, 'role must be master, warden or worker')
    if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'only a master (the operator) sets roles')
    if (!this.agents.has(amid)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${amid} is registered on this relay`)
    const before = await this.ctx.store.roleOf(amid)
    await this.ctx.store.setRole(amid, role)
    await this.ctx.audit(p, 'role.set', amid, { role, previous: before })
    return { amid, role }
  }

  async handleField (amid: string): Promise<{ handle?: string }> {
    const h = await this.handleOf(amid)
    return h === undefined ? {} : { handle: h }
  }
}
