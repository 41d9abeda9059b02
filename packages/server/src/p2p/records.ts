/**
 * The agent's signed peer record in its registry profile (docs/protocol.md §30.1): where it can be
 * reached directly, as a libp2p RFC 0003 record signed by its AMID key. The relay checks the
 * envelope (signature, signer = the AMID, 1–16 addresses, 4096 bytes) and that its sequence number
 * moves forward, then stores it with the profile as received. Readers verify it again: the relay
 * could hide a record or hand out an older one, not forge one.
 */
import type { Context, Hono } from 'hono'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { AgentMeshError, ErrorCode, P2pRecordBody, type P2pRecord } from '@agentmesh/protocol'
import type { AgentProfile, Store } from '@agentmesh/store'
import type { RelayFeature } from '../feature.ts'
import { amidParam, invalid, type RegistryHelpers } from '../registry.ts'
import { answer } from '../rest.ts'

const bodyCheck = TypeCompiler.Compile(P2pRecordBody)

/** The wire form of a stored record. */
export function peerRecordJson (p2p: NonNullable<AgentProfile['p2p']>): P2pRecord {
  return { addrs: p2p.addrs, seq: p2p.seq, record: p2p.record, updated_at: p2p.updatedAt }
}

export function peerRecordsFeature (c: { store: Store, now: () => number, registry: () => RegistryHelpers }): RelayFeature {
  const { store, now } = c
  // one write per agent at a time in this process, so "seq moves forward" is read and written as one step
  const chains = new Map<string, Promise<unknown>>()
  const serial = async <T>(amid: string, f: () => Promise<T>): Promise<T> => {
    const prev = chains.get(amid) ?? Promise.resolve()
    const next = prev.then(f, f)
    const tail = next.catch(() => undefined)
    chains.set(amid, tail)
    try { return await next } finally { if (chains.get(amid) === tail) chains.delete(amid) }
  }

  async function own (ctx: Context): Promise<{ amid: string, body: unknown }> {
    const amid = amidParam(ctx)
    const { signer, body } = await c.registry().signed(ctx)
    if (signer !== amid) throw new AgentMeshError(ErrorCode.Forbidden, `the request is signed by ${signer}; only ${amid} may change its records`)
    return { amid, body }
  }

  return {
    name: 'peer-records',
    routes (app: Hono) {
      app.put('/api/v1/agents/:amid/p2p', async (ctx) => {
        const { amid, body } = await own(ctx)
        if (!bodyCheck.Check(body)) throw invalid(bodyCheck, body)
        // loaded on first use: a relay whose agents publish no record never loads libp2p
        const { openPeerRecord } = await import('@agentmesh/p2p/internal')
        const opened = await openPeerRecord(body.record, amid)
        const stored = await serial(amid, async () => {
          const old = await store.getProfile(amid)
          if (old?.p2p !== undefined) {
            if (old.p2p.record === body.record) return old.p2p
            if (BigInt(old.p2p.seq) >= opened.seq) {
              throw new AgentMeshError(ErrorCode.PeerRecordStale, `the record's seq ${opened.seq} is not above the stored one's (${old.p2p.seq}): seal a new record`)
            }
          }
          const t = now()
          const p2p = { record: body.record, addrs: opened.addrs, seq: opened.seq.toString(), updatedAt: t }
          await store.upsertAgent({ amid, seenAt: t })
          await store.putProfile({ ...(old ?? { amid, capabilities: [], tier: 'anonymous', updatedAt: t }), p2p })
          return p2p
        })
        return answer(ctx, 'putP2pRecord', peerRecordJson(stored))
      })

      app.delete('/api/v1/agents/:amid/p2p', async (ctx) => {
        const { amid } = await own(ctx)
        const removed = await serial(amid, async () => {
          const old = await store.getProfile(amid)
          if (old?.p2p === undefined) return false
          const { p2p: _gone, ...rest } = old
          await store.putProfile(rest)
          return true
        })
        return answer(ctx, 'deleteP2pRecord', { removed })
      })
    },
  }
}
