/**
 * Reading certificates without verifying them: splitting PEM text into blocks, and what a
 * certificate claims about itself (its role, declared tier, AMIDs; `describeCertificate`, behind
 * `agentmesh cert show`). `verifyChain` (cert-verify.ts) uses the same readers before it checks
 * what they return.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import { BasicConstraintsExtension, CertificatePolicyExtension, SubjectAlternativeNameExtension, type X509Certificate } from '@peculiar/x509'
import { ErrorCode } from '@agentmesh/protocol'
import { CertificateError, type AgentCertTier, type CertificateInfo, type CertRole } from './cert-types.ts'
import { AMID_URI_PREFIX, parseCert, policies, sameName } from './cert-x509.ts'

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g

/** The PEM blocks in `text` (optionally only those of one label, e.g. `CERTIFICATE` or `X509 CRL`). */
export function splitPem (text: string, label?: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(PEM_BLOCK)) if (label === undefined || m[1] === label) out.push(m[0] + '\n')
  return out
}

function policySet (cert: X509Certificate): Set<string> {
  const ext = cert.getExtension(CertificatePolicyExtension)
  return new Set(ext === null ? [] : ext.policies)
}

export function declaredTier (cert: X509Certificate): AgentCertTier | 'both' | undefined {
  const p = policySet(cert)
  const v = p.has(policies().verified)
  const a = p.has(policies().anonymous)
  return v && a ? 'both' : v ? 'verified' : a ? 'anonymous' : undefined
}

export function isCa (cert: X509Certificate): boolean {
  return cert.getExtension(BasicConstraintsExtension)?.ca === true
}

export function roleOf (cert: X509Certificate): CertRole {
  if (isCa(cert)) return sameName(cert.subjectName, cert.issuerName) ? 'root-ca' : 'organisation-ca'
  if (policySet(cert).has(policies().session)) return 'session'
  if (declaredTier(cert) !== undefined) return 'agent'
  return 'unknown'
}

export function amidsOf (cert: X509Certificate): { cn?: string, san: string[] } {
  const cn = cert.subjectName.getField('CN')[0]
  const sanExt = cert.getExtension(SubjectAlternativeNameExtension)
  const san = sanExt === null
    ? []
    : sanExt.names.items.filter(n => n.type === 'url' && n.value.startsWith(AMID_URI_PREFIX)).map(n => n.value.slice(AMID_URI_PREFIX.length))
  return { ...(cn === undefined ? {} : { cn }), san }
}

/** What a certificate says about itself, without verifying anything. */
export function describeCertificate (pem: string): CertificateInfo {
  let cert: X509Certificate
  try { cert = parseCert(pem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `the certificate cannot be parsed: ${(cause as Error).message}`, { cause })
  }
  const role = roleOf(cert)
  const tier = declaredTier(cert)
  const { san } = amidsOf(cert)
  const org = cert.subjectName.getField('O')[0]
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    role,
    ...(role === 'agent' && (tier === 'verified' || tier === 'anonymous') ? { tier } : {}),
    ...(san[0] === undefined ? {} : { amid: san[0] }),
    ...(org === undefined ? {} : { org }),
    selfIssued: sameName(cert.subjectName, cert.issuerName),
    keyAlgorithm: cert.publicKey.algorithm.name,
  }
}
