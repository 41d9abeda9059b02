/** The certificates slice of the in-memory store: agent certificate records, CA certificates, CRLs. */
import type { CaCertificateRecord, CertificateRecord, CertificateStore, CrlRecord } from '../types.ts'
import { compareCrls, crlPutResult } from '../registry.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryCertificates (live: () => void): CertificateStore {
  const certificates = new Map<string, CertificateRecord>()
  const cas = new Map<string, CaCertificateRecord>()
  const crls = new Map<string, CrlRecord>()

  return {
    async putCertificate (r) { live(); certificates.set(r.amid, structuredClone(r)) },
    async getCertificate (amid) { live(); const r = certificates.get(amid); return r === undefined ? undefined : structuredClone(r) },
    async putCaCertificate (ca) { live(); if (!cas.has(ca.key)) cas.set(ca.key, { ...ca }) },
    async findCaCertificates (subject) {
      live()
      return [...cas.values()].filter(c => c.subject === subject).sort((a, b) => a.key < b.key ? -1 : 1).map(c => ({ ...c }))
    },
    async putCrl (crl) {
      live()
      const r = crlPutResult(crls.get(crl.issuerKey), crl)
      if (r.status === 'stored') crls.set(crl.issuerKey, { ...crl })
      return r.status === 'outdated' ? { status: 'outdated', current: { ...r.current } } : r
    },
    async listCrls () { live(); return [...crls.values()].sort(compareCrls).map(c => ({ ...c })) },
  }
}
