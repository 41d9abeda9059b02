/**
 * Chain verification and trust tiers: `verifyChain` checks a chain (leaf first) link by link
 * against trusted roots and CRLs (parsing, roles, names and signatures, validity, revocation) and
 * derives the agent's tier (anonymous, verified or organisation) from where its certificate sits.
 * Every failure is a {@link CertificateError} that names the failing link.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import { KeyUsageFlags, KeyUsagesExtension, type X509Certificate } from '@peculiar/x509'
import { ErrorCode } from '@agentmesh/protocol'
import { amidFromPublicKey, isAmid } from './keys.ts'
import { CertificateError, type TrustTier, type VerifiedChain, type VerifyChainOptions } from './cert-types.ts'
import { AMID_URI_PREFIX, MAX_CHAIN_LENGTH, minDate, parseCert, rawEd25519Key, sameBytes, sameName, webcrypto } from './cert-x509.ts'
import { parseCrlObject } from './cert-crl.ts'
import { amidsOf, declaredTier, isCa, roleOf } from './cert-inspect.ts'

interface Link {
  cert: X509Certificate
  /** Position in the chain as given; undefined for a trusted root added as the anchor. */
  index?: number
  /** "certificate 1 (CN=Acme CA, O=Acme)" or "trusted root (CN=…)" */
  where: string
}

function fail (code: ErrorCode, link: Link, why: string, cause?: unknown): CertificateError {
  return new CertificateError(code, `${link.where}: ${why}`, {
    ...(link.index === undefined ? {} : { index: link.index }),
    subject: link.cert.subject,
    ...(cause === undefined ? {} : { cause }),
  })
}

function checkEd25519 (link: Link): void {
  const alg = link.cert.publicKey.algorithm.name
  if (rawEd25519Key(link.cert) === undefined) throw fail(ErrorCode.CertInvalid, link, `its key is ${alg}, not Ed25519`)
  const sig = (link.cert.signatureAlgorithm as { name?: string }).name ?? 'an unknown algorithm'
  if (sig !== 'Ed25519') throw fail(ErrorCode.CertInvalid, link, `it is signed with ${sig}, not Ed25519`)
}

async function signedBy (child: X509Certificate, parent: X509Certificate): Promise<boolean> {
  try {
    return await child.verify({ publicKey: parent.publicKey, signatureOnly: true }, webcrypto())
  } catch {
    return false
  }
}

function keyUsage (cert: X509Certificate): number | undefined {
  return cert.getExtension(KeyUsagesExtension)?.usages
}

/** An agent certificate's AMID: CN and URI SAN agree, and it is the AMID of the certificate's own key. */
function agentAmid (link: Link): string {
  const { cert } = link
  if (isCa(cert)) throw fail(ErrorCode.CertInvalid, link, 'an agent certificate must not be a CA (basicConstraints cA is set)')
  const ku = keyUsage(cert)
  if (ku !== undefined && (ku & KeyUsageFlags.digitalSignature) === 0) throw fail(ErrorCode.CertInvalid, link, 'its key usage does not allow digitalSignature')
  const tier = declaredTier(cert)
  if (tier === 'both') throw fail(ErrorCode.CertInvalid, link, 'it claims both the verified and the anonymous tier')
  const { cn, san } = amidsOf(cert)
  if (san.length === 0) throw fail(ErrorCode.CertInvalid, link, `it carries no AMID (no ${AMID_URI_PREFIX}<amid> subject alternative name)`)
  if (san.length > 1) throw fail(ErrorCode.CertInvalid, link, 'it carries more than one AMID')
  const amid = san[0]!
  if (!isAmid(amid)) throw fail(ErrorCode.CertInvalid, link, `"${amid.slice(0, 80)}" in its subject alternative name is not an AMID`)
  if (cn !== amid) throw fail(ErrorCode.CertInvalid, link, `its subject CN "${cn ?? ''}" is not its AMID ${amid}`)
  // the AMID is derived from the key: a certificate for someone else's AMID proves nothing
  if (amidFromPublicKey(rawEd25519Key(cert)!) !== amid) throw fail(ErrorCode.CertInvalid, link, `its key is not the key of ${amid}`)
  return amid
}

function checkCa (link: Link, role: string): void {
  const ku = keyUsage(link.cert)
  if (ku !== undefined && (ku & KeyUsageFlags.keyCertSign) === 0) throw fail(ErrorCode.CertInvalid, link, `a ${role} must have the keyCertSign key usage`)
}

/**
 * Verifies a chain (leaf first: [session,] agent [, organisation CA] [, root]) against trusted
 * roots and CRLs, and derives the agent's tier from it:
 * an agent certificate directly under a trusted root with tier verified → `verified`;
 * under an organisation CA → `organisation`; tier anonymous or self-signed → `anonymous`.
 *
 * Failures are {@link CertificateError}s that name the failing link (its index and subject):
 * AM_ERR_CERT_INVALID (unparsable, not Ed25519, no or wrong AMID, wrong role),
 * AM_ERR_CERT_CHAIN_BROKEN (issuer name or signature mismatch, issuer not a CA, no trusted root),
 * AM_ERR_CERT_EXPIRED (outside its validity period at `now`),
 * AM_ERR_CERT_REVOKED (listed in its issuer's CRL).
 */
export async function verifyChain (chainPem: readonly string[], opts: VerifyChainOptions): Promise<VerifiedChain> {
  const now = opts.now ?? new Date()
  if (chainPem.length === 0) throw new CertificateError(ErrorCode.CertInvalid, 'the chain is empty: expected the agent (or session) certificate first')
  if (chainPem.length > MAX_CHAIN_LENGTH) {
    throw new CertificateError(ErrorCode.CertChainBroken, `the chain has ${chainPem.length} certificates; at most ${MAX_CHAIN_LENGTH} (session → agent → organisation CA → root)`)
  }

  // 1. parse: every certificate and CRL, Ed25519 only
  const links: Link[] = chainPem.map((pem, index) => {
    let cert: X509Certificate
    try { cert = parseCert(pem) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `certificate ${index}: cannot be parsed (${(cause as Error).message})`, { index, cause })
    }
    const link = { cert, index, where: `certificate ${index} (${cert.subject})` }
    checkEd25519(link)
    return link
  })
  const roots: Link[] = opts.roots.map((pem, i) => {
    let cert: X509Certificate
    try { cert = parseCert(pem) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `trusted root ${i}: cannot be parsed (${(cause as Error).message})`, { cause })
    }
    const link = { cert, where: `trusted root (${cert.subject})` }
    checkEd25519(link)
    return link
  })
  const crls = (opts.crls ?? []).map((pem, i) => {
    try { return parseCrlObject(pem) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `CRL ${i}: cannot be parsed (${(cause as Error).message})`, { cause })
    }
  })

  // 2. roles: [session] agent [organisation CA] [root]
  let at = 0
  let session: Link | undefined
  if (roleOf(links[0]!.cert) === 'session') session = links[at++]
  const agent = links[at]
  if (agent === undefined) {
    throw fail(ErrorCode.CertChainBroken, links[0]!, `its issuer "${links[0]!.cert.issuer}" (the agent certificate) is missing from the chain`)
  }
  const agentRole = roleOf(agent.cert)
  if (agentRole === 'root-ca' || agentRole === 'organisation-ca') {
    throw fail(ErrorCode.CertInvalid, agent, session === undefined
      ? 'is a CA certificate; the chain must start with an agent or session certificate'
      : 'issued the session certificate but is a CA, not an agent certificate')
  }
  const amid = agentAmid(agent)
  const tier = declaredTier(agent.cert)
  if (tier === undefined) throw fail(ErrorCode.CertInvalid, agent, 'it carries no AgentMesh tier policy (verified or anonymous)')
  if (session !== undefined) {
    const s = amidsOf(session.cert).san
    if (s.length !== 1 || s[0] !== amid) throw fail(ErrorCode.CertInvalid, session, `a session certificate must carry the AMID of its agent ${amid}, got ${s.join(', ') || 'none'}`)
    if (isCa(session.cert)) throw fail(ErrorCode.CertInvalid, session, 'a session certificate must not be a CA')
  }
  const rest = links.slice(at + 1)
  const agentSelfSigned = sameName(agent.cert.subjectName, agent.cert.issuerName)
  if (agentSelfSigned) {
    if (tier !== 'anonymous') {
      throw fail(ErrorCode.CertChainBroken, agent, 'is self-signed: only an anonymous certificate may be; a verified one must be issued by a trusted root or an organisation CA')
    }
    if (!await signedBy(agent.cert, agent.cert)) throw fail(ErrorCode.CertChainBroken, agent, 'its self-signature does not verify')
    if (rest.length > 0) throw fail(ErrorCode.CertChainBroken, rest[0]!, `does not belong in the chain: certificate ${agent.index!} is self-signed`)
  }

  // 3. links: each certificate is named and signed by the next; the last one by a trusted root
  const path: Link[] = [...(session === undefined ? [] : [session]), agent, ...rest]
  if (!agentSelfSigned) {
    const last = path[path.length - 1]!
    if (sameName(last.cert.subjectName, last.cert.issuerName)) {
      const trusted = roots.some(r => sameBytes(r.cert.rawData, last.cert.rawData))
      if (!trusted) throw fail(ErrorCode.CertChainBroken, last, 'is a self-signed root that is not among the trusted roots')
      last.where = `certificate ${last.index!} (${last.cert.subject}, a trusted root)`
    } else {
      const named = roots.filter(r => sameName(r.cert.subjectName, last.cert.issuerName))
      if (named.length === 0) {
        throw fail(ErrorCode.CertChainBroken, last, `its issuer "${last.cert.issuer}" is neither the next certificate in the chain nor a trusted root`)
      }
      let anchor: Link | undefined
      for (const r of named) if (await signedBy(last.cert, r.cert)) { anchor = r; break }
      if (anchor === undefined) throw fail(ErrorCode.CertChainBroken, last, `its signature does not verify with the key of the trusted root "${last.cert.issuer}" (signed by another CA of that name?)`)
      path.push(anchor)
    }
  }
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!
    const parent = path[i + 1]!
    if (!sameName(child.cert.issuerName, parent.cert.subjectName)) {
      throw fail(ErrorCode.CertChainBroken, child, `names its issuer "${child.cert.issuer}", but the next certificate is "${parent.cert.subject}"`)
    }
    const parentRole = roleOf(parent.cert)
    if (child === session) {
      if (parent !== agent) throw fail(ErrorCode.CertChainBroken, child, 'a session certificate must be issued by an agent certificate')
    } else if (child === agent) {
      if (!isCa(parent.cert)) throw fail(ErrorCode.CertChainBroken, child, `its issuer ${parent.where} is not a CA`)
      checkCa(parent, parentRole === 'root-ca' ? 'root CA' : 'organisation CA')
    } else {
      // child is the agent's issuer: a root ends the chain, an organisation CA is issued by a root
      if (roleOf(child.cert) === 'root-ca') throw fail(ErrorCode.CertChainBroken, parent, `does not belong in the chain: ${child.where} is a root`)
      if (parentRole !== 'root-ca') throw fail(ErrorCode.CertChainBroken, child, `an organisation CA must be issued by a root CA, and its issuer ${parent.where} is not one`)
      checkCa(parent, 'root CA')
      if (child.cert.subjectName.getField('O')[0] === undefined) throw fail(ErrorCode.CertInvalid, child, 'an organisation CA must name its organisation (O)')
    }
    if (!await signedBy(child.cert, parent.cert)) {
      throw fail(ErrorCode.CertChainBroken, child, `its signature does not verify with the key of its issuer ${parent.where}`)
    }
  }
  const issuerOfAgent = agentSelfSigned ? undefined : path[path.indexOf(agent) + 1]!

  // 4. validity at `now`, trusted root included
  for (const link of path) {
    if (now.getTime() < link.cert.notBefore.getTime()) {
      throw fail(ErrorCode.CertExpired, link, `is not valid before ${link.cert.notBefore.toISOString()} (now ${now.toISOString()})`)
    }
    if (now.getTime() > link.cert.notAfter.getTime()) {
      throw fail(ErrorCode.CertExpired, link, `expired at ${link.cert.notAfter.toISOString()} (now ${now.toISOString()})`)
    }
  }

  // 5. revocation: each certificate against the CRLs of its issuer
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!
    const parent = path[i + 1]!
    for (const [n, crl] of crls.entries()) {
      if (!sameName(crl.issuerName, parent.cert.subjectName)) continue
      let ok = false
      try { ok = await crl.verify({ publicKey: parent.cert }, webcrypto()) } catch {}
      if (!ok) {
        throw new CertificateError(ErrorCode.CertInvalid, `CRL ${n} names "${crl.issuer}" as its issuer but is not signed by the key of ${parent.where}`)
      }
      const entry = crl.findRevoked(child.cert)
      if (entry !== null) {
        throw fail(ErrorCode.CertRevoked, child, `was revoked by "${crl.issuer}" on ${entry.revocationDate.toISOString()} (serial ${child.cert.serialNumber})`)
      }
    }
  }

  let result: TrustTier
  let org: string | undefined
  if (tier === 'anonymous' || issuerOfAgent === undefined) {
    result = 'anonymous'
  } else if (roleOf(issuerOfAgent.cert) === 'organisation-ca') {
    result = 'organisation'
    org = issuerOfAgent.cert.subjectName.getField('O')[0]
  } else {
    result = 'verified'
  }
  const notAfter = path.reduce((d, l) => minDate(d, l.cert.notAfter), path[0]!.cert.notAfter)
  return {
    tier: result,
    amid,
    ...(org === undefined ? {} : { org }),
    ...(session === undefined ? {} : { sessionPublicKey: rawEd25519Key(session.cert)! }),
    notAfter,
  }
}
