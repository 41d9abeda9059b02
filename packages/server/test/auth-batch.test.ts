import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { AgentOnline, AgentOnlineResult } from '@agentmesh/store'
import { memoryStore } from '@agentmesh/store'
import { AuthBatch } from '../src/auth-batch.ts'

const item = (amid: string): AgentOnline => ({ amid, seenAt: 1, delivery: 'inbox' })

describe('auth batch', () => {
  it('auth - the authentications of one turn reach the Store in one call, each caller gets its own answer', async () => {
    const calls: string[][] = []
    const store = memoryStore()
    const batch = new AuthBatch({
      agentsOnline: async (b: readonly AgentOnline[]): Promise<AgentOnlineResult[]> => { calls.push(b.map(a => a.amid)); return await store.agentsOnline(b) },
    })
    const first = await Promise.all([batch.add(item('a1')), batch.add(item('a2')), batch.add(item('a1'))])
    assert.deepEqual(calls, [['a1', 'a2', 'a1']])
    assert.deepEqual(first.map(r => r.created), [true, true, false], 'in order: the second a1 is a returning agent')
    await batch.add(item('a3'))
    assert.deepEqual(calls, [['a1', 'a2', 'a1'], ['a3']], 'a later turn is a new call')
  })

  it('auth - a batch is split at its bound, and a failed call fails only the authentications it held', async () => {
    const calls: number[] = []
    const batch = new AuthBatch({
      agentsOnline: async (b: readonly AgentOnline[]): Promise<AgentOnlineResult[]> => {
        calls.push(b.length)
        if (b.some(a => a.amid === 'bad')) throw new Error('disk full')
        return b.map(() => ({ created: true, feeds: [] }))
      },
    }, 2)
    const results = await Promise.allSettled([batch.add(item('a1')), batch.add(item('a2')), batch.add(item('bad')), batch.add(item('a4')), batch.add(item('a5'))])
    assert.deepEqual(calls, [2, 2, 1])
    assert.deepEqual(results.map(r => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled'])
  })
})
