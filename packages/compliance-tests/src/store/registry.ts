/**
 * The registry slice: the relay's id and secret, agents, profiles and prekeys.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AgentProfile, MessageStore, RegistryStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, DAVE, item, dm, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice, and commit and stats: a relay id holds across a commit, stats counts the agents, an inbox is not an agent. */
export type RegistrySuiteStore = RegistryStore & Pick<MessageStore, 'commit' | 'stats'>

export function registrySuite (init: SuiteInit<RegistrySuiteStore>): void {
  const withStore = withStoreOf(init)
  const { reopen } = init

  describe(`store compliance: ${init.name}: registry`, () => {
    describe('identity and agents', () => {
      it('store - relayId is a non-empty string that does not change', async () => {
        await withStore(undefined, async ({ store }) => {
          const a = await store.relayId()
          assert.equal(typeof a, 'string')
          assert.ok(a.length > 0, 'relayId is empty')
          await store.commit([item(ALICE, 'id-000001', BOB)], [])
          assert.equal(await store.relayId(), a)
        })
      })

      it('store - two new stores have different relay ids', async () => {
        await withStore(undefined, async ({ store: s1 }) => {
          await withStore(undefined, async ({ store: s2 }) => {
            assert.notEqual(await s1.relayId(), await s2.relayId())
          })
        })
      })

      it('store - upsertAgent answers created true the first time and false after', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 }), { created: true })
          assert.deepEqual(await store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 + 10 }), { created: false })
          assert.deepEqual(await store.upsertAgent({ amid: BOB, seenAt: T0 + 20 }), { created: true })
          assert.deepEqual(await store.getAgent(ALICE), { amid: ALICE, name: 'alice', registeredAt: T0, lastSeenAt: T0 + 10 })
          assert.deepEqual(await store.stats(), { agents: 2, pending: 0 })
        })
      })

      it('store - upsertAgent without a name keeps the name, with a name updates it', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 })
          await store.upsertAgent({ amid: ALICE, seenAt: T0 + 5 })
          assert.deepEqual(await store.getAgent(ALICE), { amid: ALICE, name: 'alice', registeredAt: T0, lastSeenAt: T0 + 5 })
          await store.upsertAgent({ amid: ALICE, name: 'alice-2', seenAt: T0 + 9 })
          assert.deepEqual(await store.getAgent(ALICE), { amid: ALICE, name: 'alice-2', registeredAt: T0, lastSeenAt: T0 + 9 })
        })
      })

      it('store - an agent registered without a name has no name', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.upsertAgent({ amid: BOB, seenAt: T0 })
          const bob = await store.getAgent(BOB)
          assert.ok(bob !== undefined)
          assert.equal(bob.amid, BOB)
          assert.equal(bob.name, undefined)
          assert.equal(bob.registeredAt, T0)
          assert.equal(bob.lastSeenAt, T0)
        })
      })

      it('store - getAgent of an unknown agent is undefined', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.upsertAgent({ amid: ALICE, seenAt: T0 })
          assert.equal(await store.getAgent(BOB), undefined)
        })
      })
    })

    describe('relay secret and agents', () => {
      it('store - relaySecret is 32 random bytes in base64url, the same on every call, different per store', async () => {
        await withStore(undefined, async ({ store }) => {
          const s = await store.relaySecret()
          assert.match(s, /^[A-Za-z0-9_-]{43}$/)
          assert.equal(Buffer.from(s, 'base64url').length, 32)
          assert.equal(await store.relaySecret(), s)
          await withStore(undefined, async ({ store: other }) => {
            assert.notEqual(await other.relaySecret(), s)
          })
        })
      })

      it('store - listAgents answers the registered AMIDs by amid, from after `after`, limited', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listAgents({ limit: 10 }), [])
          for (const a of [CAROL, ALICE, DAVE, BOB]) await store.upsertAgent({ amid: a, seenAt: T0 })
          await store.commit([dm(ALICE, 'id-000001', 'am-zed')], []) // an inbox is not an agent
          assert.deepEqual(await store.listAgents({ limit: 10 }), [ALICE, BOB, CAROL, DAVE])
          assert.deepEqual(await store.listAgents({ limit: 2 }), [ALICE, BOB])
          assert.deepEqual(await store.listAgents({ after: BOB, limit: 2 }), [CAROL, DAVE])
          assert.deepEqual(await store.listAgents({ after: 'am-b', limit: 10 }), [BOB, CAROL, DAVE])
          assert.deepEqual(await store.listAgents({ after: DAVE, limit: 10 }), [])
        })
      })
    })

    describe('registry', () => {
      const profile = (amid: string, over: Partial<AgentProfile> = {}): AgentProfile => ({
        amid,
        displayName: `Agent ${amid}`,
        capabilities: [{ id: 'translate', name: 'Translation', description: 'French to English', tags: ['language', 'nlp'] }],
        tier: 'anonymous',
        updatedAt: T0,
        ...over,
      })

      it('store - a profile round-trips, and a second put replaces it', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.getProfile(ALICE), undefined)
          await store.putProfile(profile(ALICE, { version: '1.0.0' }))
          assert.deepEqual(await store.getProfile(ALICE), profile(ALICE, { version: '1.0.0' }))
          const next = profile(ALICE, { displayName: 'Alice 2', capabilities: [], tier: 'verified', updatedAt: T0 + 5 })
          await store.putProfile(next)
          assert.deepEqual(await store.getProfile(ALICE), next)
        })
      })

      it('store - a profile carries the agent\'s peer record (§30.1) as given, and a put without it drops it', async () => {
        await withStore(undefined, async ({ store }) => {
          const p2p = { record: 'CiQIARIg' + 'A'.repeat(60), addrs: ['/ip4/127.0.0.1/tcp/4001', '/dns4/relay.example/tcp/443/wss/p2p/12D3KooWQ/p2p-circuit'], seq: '18446744073709551615', updatedAt: T0 + 1 }
          await store.putProfile(profile(ALICE, { p2p }))
          assert.deepEqual(await store.getProfile(ALICE), profile(ALICE, { p2p }))
          assert.deepEqual((await store.searchProfiles({ text: 'agent', limit: 10 })).find(x => x.amid === ALICE)?.p2p, p2p)
          await store.putProfile(profile(ALICE))
          assert.equal((await store.getProfile(ALICE))?.p2p, undefined)
        })
      })

      it('store - search by capability (skill id or tag, any case) and by text, ordered by amid, limited', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putProfile(profile(CAROL))
          await store.putProfile(profile(ALICE))
          await store.putProfile(profile(BOB, { displayName: 'Weather bot', capabilities: [{ id: 'forecast', name: 'Forecast', tags: ['weather'] }] }))
          const ids = (ps: AgentProfile[]): string[] => ps.map(p => p.amid)
          assert.deepEqual(ids(await store.searchProfiles({ capability: 'translate', limit: 10 })), [ALICE, CAROL])
          assert.deepEqual(ids(await store.searchProfiles({ capability: 'NLP', limit: 10 })), [ALICE, CAROL])
          assert.deepEqual(ids(await store.searchProfiles({ capability: 'nl', limit: 10 })), [], 'a capability matches whole ids and tags only')
          assert.deepEqual(ids(await store.searchProfiles({ text: 'WEATHER', limit: 10 })), [BOB])
          assert.deepEqual(ids(await store.searchProfiles({ text: 'french', limit: 10 })), [ALICE, CAROL])
          assert.deepEqual(ids(await store.searchProfiles({ text: 'french', capability: 'forecast', limit: 10 })), [])
          assert.deepEqual(ids(await store.searchProfiles({ limit: 2 })), [ALICE, BOB])
          assert.deepEqual(ids(await store.searchProfiles({ text: '%', limit: 10 })), [], 'LIKE wildcards are matched literally')
          assert.deepEqual(ids(await store.searchProfiles({ text: '_', limit: 10 })), [])
        })
      })

      it('store - one-time prekeys are handed out once each, lowest id first, then the bundle has none', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.takePrekeyBundle(BOB), undefined, 'no bundle before an upload')
          const base = { exchange_key: 'xk', signed_prekey: { id: 1, key: 'spk', sig: 's' } }
          assert.deepEqual(await store.putPrekeys(BOB, { base, oneTime: [{ id: 3, key: 'k3' }, { id: 1, key: 'k1' }, { id: 2, key: 'k2' }] }), { oneTime: 3, pqOneTime: 0 })
          assert.deepEqual(await store.putPrekeys(BOB, { oneTime: [{ id: 2, key: 'other' }] }), { oneTime: 3, pqOneTime: 0 }, 'an id already there is ignored')
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 1, key: 'k1' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 2, key: 'k2' } })
          assert.equal(await store.countOneTimePrekeys(BOB), 1)
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 3, key: 'k3' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base })
          assert.equal(await store.countOneTimePrekeys(BOB), 0)
          assert.equal(await store.countOneTimePrekeys(ALICE), 0)
        })
      })

      it('store - concurrent bundle requests never get the same one-time prekey', async () => {
        await withStore(undefined, async ({ store }) => {
          const oneTime = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, key: `k${i + 1}` }))
          await store.putPrekeys(BOB, { base: { b: 1 }, oneTime })
          const taken = await Promise.all(Array.from({ length: 25 }, async () => await store.takePrekeyBundle(BOB)))
          const ids = taken.map(t => t?.oneTime?.id).filter((id): id is number => id !== undefined)
          assert.equal(ids.length, 20)
          assert.equal(new Set(ids).size, 20)
          assert.equal(taken.filter(t => t !== undefined && t.oneTime === undefined).length, 5)
        })
      })

      it('store - one-time PQ prekeys: counted, one per bundle with the curve one, lowest id first, each once, then none', async () => {
        await withStore(undefined, async ({ store }) => {
          const base = { pq_prekey: { id: 1, key: 'lastresort', sig: 's' } }
          const pq = (id: number, key = `pq${id}`): { id: number, key: string, sig: string } => ({ id, key, sig: `sig${id}` })
          assert.deepEqual(await store.putPrekeys(BOB, { base, oneTime: [{ id: 1, key: 'k1' }], pqOneTime: [pq(3), pq(1), pq(2)] }), { oneTime: 1, pqOneTime: 3 })
          assert.deepEqual(await store.putPrekeys(BOB, { oneTime: [], pqOneTime: [pq(2, 'other')] }), { oneTime: 1, pqOneTime: 3 }, 'an id already there is ignored')
          assert.equal(await store.countPqOneTimePrekeys(BOB), 3)
          assert.equal(await store.countPqOneTimePrekeys(ALICE), 0)
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 1, key: 'k1' }, pqOneTime: pq(1) })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, pqOneTime: pq(2) }, 'the PQ ones outlast the curve ones on their own')
          assert.equal(await store.countPqOneTimePrekeys(BOB), 1)
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, pqOneTime: pq(3) })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base }, 'none left: the last-resort key in the base only')
          assert.equal(await store.countPqOneTimePrekeys(BOB), 0)
        })
      })

      it('store - concurrent bundle requests never get the same one-time PQ prekey', async () => {
        await withStore(undefined, async ({ store }) => {
          const pqOneTime = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, key: `pq${i + 1}`, sig: `s${i + 1}` }))
          await store.putPrekeys(BOB, { base: { b: 1 }, oneTime: [], pqOneTime })
          const taken = await Promise.all(Array.from({ length: 25 }, async () => await store.takePrekeyBundle(BOB)))
          const ids = taken.map(t => t?.pqOneTime?.id).filter((id): id is number => id !== undefined)
          assert.equal(ids.length, 20)
          assert.equal(new Set(ids).size, 20)
          assert.equal(taken.filter(t => t !== undefined && t.pqOneTime === undefined).length, 5)
        })
      })

      it('store - replaceOneTime deletes the one-time PQ prekeys held before too, of that agent only', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putPrekeys(BOB, { base: { v: 1 }, oneTime: [], pqOneTime: [{ id: 1, key: 'old1', sig: 's' }, { id: 5, key: 'old5', sig: 's' }] })
          await store.putPrekeys(ALICE, { base: { v: 1 }, oneTime: [], pqOneTime: [{ id: 1, key: 'alice1', sig: 's' }] })
          assert.deepEqual(await store.putPrekeys(BOB, { oneTime: [], replaceOneTime: true }), { oneTime: 0, pqOneTime: 0 })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 1 } })
          assert.deepEqual(await store.putPrekeys(BOB, { oneTime: [], pqOneTime: [{ id: 1, key: 'new1', sig: 't' }], replaceOneTime: true }), { oneTime: 0, pqOneTime: 1 })
          assert.deepEqual((await store.takePrekeyBundle(BOB))?.pqOneTime, { id: 1, key: 'new1', sig: 't' })
          assert.equal(await store.countPqOneTimePrekeys(ALICE), 1, 'another agent\'s PQ prekeys are untouched')
        })
      })

      it('store - a new base replaces the old one and keeps the one-time prekeys', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putPrekeys(BOB, { base: { v: 1 }, oneTime: [{ id: 1, key: 'k1' }] })
          await store.putPrekeys(BOB, { base: { v: 2 }, oneTime: [] })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 }, oneTime: { id: 1, key: 'k1' } })
        })
      })

      it('store - replaceOneTime drops the one-time prekeys held before (same ids included) and keeps only the new ones', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putPrekeys(BOB, { base: { v: 1 }, oneTime: [{ id: 1, key: 'old1' }, { id: 2, key: 'old2' }, { id: 9, key: 'old9' }] })
          await store.putPrekeys(ALICE, { base: { v: 1 }, oneTime: [{ id: 1, key: 'alice1' }] })
          assert.deepEqual(await store.putPrekeys(BOB, { base: { v: 2 }, oneTime: [{ id: 1, key: 'new1' }, { id: 2, key: 'new2' }], replaceOneTime: true }), { oneTime: 2, pqOneTime: 0 })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 }, oneTime: { id: 1, key: 'new1' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 }, oneTime: { id: 2, key: 'new2' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 } })
          assert.equal(await store.countOneTimePrekeys(ALICE), 1, 'another agent\'s prekeys are untouched')
        })
      })
    })

    if (reopen !== undefined) {
      describe('durability', () => {
        it('store - the relay id and agents survive close and reopen', async () => {
          await withStore(undefined, async (h) => {
            const relayId = await h.store.relayId()
            await h.store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 })
            await h.store.upsertAgent({ amid: BOB, seenAt: T0 + 1 })

            h.store = await reopen(h.store)

            assert.equal(await h.store.relayId(), relayId)
            assert.deepEqual(await h.store.getAgent(ALICE), { amid: ALICE, name: 'alice', registeredAt: T0, lastSeenAt: T0 })
            assert.equal((await h.store.getAgent(BOB))?.registeredAt, T0 + 1)
          })
        })

        it('store - profiles and prekeys survive reopen; a handed-out prekey stays gone', async () => {
          await withStore(undefined, async (h) => {
            const p: AgentProfile = { amid: ALICE, capabilities: [{ id: 'x', name: 'X', tags: [] }], tier: 'verified', updatedAt: T0 }
            await h.store.putProfile(p)
            await h.store.putPrekeys(BOB, { base: { b: 1 }, oneTime: [{ id: 1, key: 'k1' }, { id: 2, key: 'k2' }], pqOneTime: [{ id: 1, key: 'p1', sig: 's1' }, { id: 2, key: 'p2', sig: 's2' }] })
            await h.store.takePrekeyBundle(BOB)

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.getProfile(ALICE), p)
            assert.equal(await h.store.countPqOneTimePrekeys(BOB), 1)
            assert.deepEqual(await h.store.takePrekeyBundle(BOB), { base: { b: 1 }, oneTime: { id: 2, key: 'k2' }, pqOneTime: { id: 2, key: 'p2', sig: 's2' } })
          })
        })
      })
    }
  })
}
