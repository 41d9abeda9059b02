/**
 * Revocation: certificate revocation lists (RFC 5280 §5), one per issuer, signed by the issuing
 * CA. `createCrl` writes one; `parseCrl` reads one back. Checking a chain against CRLs is part of
 * `verifyChain` (cert-verify.ts), which uses `parseCrlObject` from here.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import { AuthorityKeyIdentifierExtension, PemConverter, X509Crl, X509CrlGenerator } from '@peculiar/x509'
import { ErrorCode } from '@agentmesh/protocol'
import { CertificateError, type CertificateAuthority, type CrlInit, type ParsedCrl, type RevokedEntry } from './cert-types.ts'
import {
  DAY_MS, DEFAULT_CRL_VALIDITY_DAYS, ED25519, MAX_PEM_BYTES, checkDays, importSigningKey, normaliseSerial, parseCert,
  webcrypto,
} from './cert-x509.ts'

/** A CRL (RFC 5280 §5) signed by `issuer`, listing `revoked` serials; PEM (`X509 CRL`, as OpenSSL writes it). */
export async function createCrl (issuer: CertificateAuthority, revoked: Iterable<string | RevokedEntry>, init: CrlInit = {}): Promise<string> {
  const now = init.now ?? new Date()
  const days = checkDays('validityDays', init.validityDays ?? DEFAULT_CRL_VALIDITY_DAYS, 366)
  const seen = new Set<string>()
  const entries: Array<{ serialNumber: string, revocationDate: Date }> = []
  for (const r of revoked) {
    const e = typeof r === 'string' ? { serial: r } : r
    const serial = normaliseSerial(e.serial)
    if (seen.has(serial)) continue
    seen.add(serial)
    entries.push({ serialNumber: serial, revocationDate: e.revokedAt ?? now })
  }
  const issuerCert = parseCert(issuer.certPem)
  const crl = await X509CrlGenerator.create({
    issuer: issuerCert.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + days * DAY_MS),
    entries,
    signingKey: await importSigningKey(issuer.privateKeyPem),
    signingAlgorithm: ED25519,
    extensions: [await AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false, webcrypto())],
  }, webcrypto())
  return PemConverter.encode(crl.rawData, 'X509 CRL') + '\n'
}

export function parseCrlObject (pem: string): X509Crl {
  if (pem.length > 16 * MAX_PEM_BYTES) throw new Error(`larger than ${16 * MAX_PEM_BYTES} bytes`)
  return new X509Crl(pem)
}

/** Reads a CRL (its signature is checked by `verifyChain`, against the issuer in the chain). */
export function parseCrl (pem: string): ParsedCrl {
  let crl: X509Crl
  try { crl = parseCrlObject(pem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `the CRL cannot be parsed: ${(cause as Error).message}`, { cause })
  }
  return {
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate,
    ...(crl.nextUpdate === undefined ? {} : { nextUpdate: crl.nextUpdate }),
    revoked: crl.entries.map(e => ({ serial: e.serialNumber, revokedAt: e.revocationDate })),
  }
}
