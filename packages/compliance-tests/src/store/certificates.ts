/**
 * The certificates slice: agent certificate records, CA certificates and CRLs (docs/protocol.md §13.1).
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CaCertificateRecord, CertificateRecord, CertificateStore, CrlRecord } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, type SuiteInit } from './fixtures.ts'

function certRecord (amid: string, over: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    amid,
    chain: [`-----BEGIN CERTIFICATE-----\nleaf-of-${amid}\n-----END CERTIFICATE-----\n`, '-----BEGIN CERTIFICATE-----\norg\n-----END CERTIFICATE-----\n'],
    tier: 'organisation',
    organisation: 'Acme',
    notAfter: T0 + 365 * 86_400_000,
    anchorKey: 'key-root',
    links: [{ index: 0, subject: `CN=${amid}, O=Acme`, serial: '0a1b', issuerKey: 'key-org' }, { index: 1, subject: 'CN=Acme CA, O=Acme', serial: '77', issuerKey: 'key-root' }],
    publishedAt: T0,
    ...over,
  }
}

function caRecord (key: string, subject: string): CaCertificateRecord {
  return { key, subject, pem: `-----BEGIN CERTIFICATE-----\n${key}\n-----END CERTIFICATE-----\n`, addedAt: T0 }
}

function crlRecord (issuerKey: string, issuer: string, thisUpdate: number, over: Partial<CrlRecord> = {}): CrlRecord {
  return {
    issuerKey,
    issuer,
    thisUpdate,
    nextUpdate: thisUpdate + 7 * 86_400_000,
    revokedCount: 1,
    pem: `-----BEGIN X509 CRL-----\n${issuerKey}@${thisUpdate}\n-----END X509 CRL-----\n`,
    storedAt: T0,
    ...over,
  }
}

/** What the cases call: the slice only. */
export type CertificatesSuiteStore = CertificateStore

export function certificatesSuite (init: SuiteInit<CertificatesSuiteStore>): void {
  const withStore = withStoreOf(init)
  const { reopen } = init

  describe(`store compliance: ${init.name}: certificates`, () => {
    describe('certificates and CRLs', () => {
      it('store - a certificate record round-trips, a second put replaces it, others are undefined', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.getCertificate(ALICE), undefined)
          await store.putCertificate(certRecord(ALICE))
          await store.putCertificate(certRecord(BOB, { tier: 'anonymous', chain: ['self-signed'], links: [], organisation: undefined, anchorKey: undefined }))
          assert.deepEqual(await store.getCertificate(ALICE), certRecord(ALICE))
          const next = certRecord(ALICE, { tier: 'verified', chain: ['other'], notAfter: T0 + 1, links: [], publishedAt: T0 + 5 })
          delete next.organisation
          await store.putCertificate(next)
          assert.deepEqual(await store.getCertificate(ALICE), next)
          assert.equal((await store.getCertificate(BOB))?.tier, 'anonymous')
          assert.equal(await store.getCertificate(CAROL), undefined)
        })
      })

      it('store - CA certificates are found by subject, ordered by key; a known key keeps its first record', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.findCaCertificates('CN=Acme CA, O=Acme'), [])
          await store.putCaCertificate(caRecord('k2', 'CN=Acme CA, O=Acme'))
          await store.putCaCertificate(caRecord('k1', 'CN=Acme CA, O=Acme'))
          await store.putCaCertificate(caRecord('k3', 'CN=Other CA, O=Other'))
          await store.putCaCertificate({ ...caRecord('k1', 'CN=Acme CA, O=Acme'), pem: 'replaced?', addedAt: T0 + 9 })
          assert.deepEqual(await store.findCaCertificates('CN=Acme CA, O=Acme'), [caRecord('k1', 'CN=Acme CA, O=Acme'), caRecord('k2', 'CN=Acme CA, O=Acme')])
          assert.deepEqual(await store.findCaCertificates('CN=Other CA, O=Other'), [caRecord('k3', 'CN=Other CA, O=Other')])
          assert.deepEqual(await store.findCaCertificates('CN=acme ca, O=Acme'), [], 'subjects match exactly')
        })
      })

      it('store - the newest CRL per issuer key wins: older and equal ones are refused, the same one is unchanged', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listCrls(), [])
          const first = crlRecord('k-org', 'CN=Acme CA, O=Acme', T0)
          assert.deepEqual(await store.putCrl(first), { status: 'stored' })
          assert.deepEqual(await store.putCrl({ ...first, storedAt: T0 + 1 }), { status: 'unchanged' })
          assert.deepEqual(await store.putCrl(crlRecord('k-org', 'CN=Acme CA, O=Acme', T0 - 1000)), { status: 'outdated', current: first })
          assert.deepEqual(await store.putCrl({ ...first, pem: 'another CRL with the same thisUpdate', revokedCount: 5 }), { status: 'outdated', current: first })
          const second = crlRecord('k-org', 'CN=Acme CA, O=Acme', T0 + 1000, { revokedCount: 3 })
          delete second.nextUpdate
          assert.deepEqual(await store.putCrl(second), { status: 'stored' })
          // another CA, and another key under the same name: each has its own CRL
          const root = crlRecord('k-root', 'CN=Root', T0)
          const twin = crlRecord('k-twin', 'CN=Acme CA, O=Acme', T0 - 5000)
          assert.deepEqual(await store.putCrl(root), { status: 'stored' })
          assert.deepEqual(await store.putCrl(twin), { status: 'stored' })
          assert.deepEqual(await store.listCrls(), [second, twin, root])
        })
      })

      it('store - concurrent CRL uploads of one issuer leave the newest', async () => {
        await withStore(undefined, async ({ store }) => {
          const times = [5, 1, 9, 3, 7, 2, 8].map(n => T0 + n * 1000)
          await Promise.all(times.map(async t => await store.putCrl(crlRecord('k-org', 'CN=Acme CA, O=Acme', t))))
          assert.deepEqual(await store.listCrls(), [crlRecord('k-org', 'CN=Acme CA, O=Acme', T0 + 9000)])
        })
      })
    })

    if (reopen !== undefined) {
      describe('durability', () => {
        it('store - certificates, CA certificates and CRLs survive reopen', async () => {
          await withStore(undefined, async (h) => {
            await h.store.putCertificate(certRecord(ALICE))
            await h.store.putCaCertificate(caRecord('k1', 'CN=Acme CA, O=Acme'))
            await h.store.putCrl(crlRecord('k1', 'CN=Acme CA, O=Acme', T0 + 1000))

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.getCertificate(ALICE), certRecord(ALICE))
            assert.deepEqual(await h.store.findCaCertificates('CN=Acme CA, O=Acme'), [caRecord('k1', 'CN=Acme CA, O=Acme')])
            assert.deepEqual(await h.store.listCrls(), [crlRecord('k1', 'CN=Acme CA, O=Acme', T0 + 1000)])
            assert.equal((await h.store.putCrl(crlRecord('k1', 'CN=Acme CA, O=Acme', T0))).status, 'outdated', 'the newest is still known')
          })
        })
      })
    }
  })
}
