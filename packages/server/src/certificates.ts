/**
 * Certificates in the registry (docs/protocol.md §13.1): the relay's trust roots, the chains agents
 * publish, and the CRLs it holds.
 *
 * - A chain is verified once, when it is published (`verifyChain` against the trust roots), and
 *   stored with what that found: tier, organisation, earliest expiry, the root that anchors it
 *   and, for every certificate a CA issued, that CA's key and the serial.
 * - Its tier is re-derived on every read, without cryptography: it holds while the chain has not
 *   expired, no link is listed in a CRL the relay holds, and its root is still a trust root. So a
 *   chain drops to `anonymous` the moment it expires, a CRL revoking one of its links is
 *   accepted, or the operator removes its root — no background job, nothing to fall behind.
 * - A CRL is accepted when it is signed by a CA the relay knows: a trust root, or an organisation
 *   CA that came in a published chain which verified. The newest per CA (by `thisUpdate`) is kept.
 *   The relay checks revocation against an index of the CRLs it holds (CA key → revoked serials),
 *   built from the Store when first needed and updated on every accepted CRL; matching by the
 *   issuer's key, not its name, so two CAs of the same name never answer for each other.
 *
 * The index lives in the relay process: correct while one relay owns its Store (SQLite holds an
 * exclusive lock). Relays sharing a Store would also have to share accepted CRLs.
 */
import { X509Certificate, createHash, verify as verifySignature, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  CertificateError, describeCertificate, normaliseSerial, parseCrl, splitPem, verifyChain,
  type CertificateInfo,
} from '@agentmesh/crypto'
import type { CaCertificateRecord, CertificateLink, CertificateRecord, CrlRecord, PutCrlResult, Store, TrustTier } from '@agentmesh/store'

/** Trust roots one relay may hold. */
export const MAX_TRUST_ROOTS = 64
/** Largest CRL accepted (PEM text): about 5,000 revoked Ed25519-signed serials. */
export const MAX_CRL_BYTES = 256 * 1024
/** CRLs one relay holds: one per CA, the newest. */
export const MAX_CRLS = 256
/** A CRL's thisUpdate may be this far ahead of the relay's clock (a later one would block every newer CRL). */
export const MAX_CRL_CLOCK_SKEW_MS = 5 * 60_000

const CRL_LABELS = new Set(['X509 CRL', 'CRL'])
/** DER of AlgorithmIdentifier { id-Ed25519 } (RFC 8410 §3): OID 1.3.101.112, no parameters. */
const ED25519_ALGORITHM = Buffer.from('06032b6570', 'hex')

/** Key id of a certificate: base64url SHA-256 of its SubjectPublicKeyInfo. */
export function keyId (cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64url')
}

function labelOf (pem: string): string {
  return /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1] ?? ''
}

// ---------------------------------------------------------------------------------------------
// Trust roots

/**
 * Checks root CA certificates given as PEM texts (each may hold several): every one must be a
 * self-signed Ed25519 CA certificate. Answers one PEM per certificate, duplicates dropped; `fail`
 * turns a sentence ("holds no …") into the error to throw.
 */
export function checkTrustRoots (texts: readonly string[], fail: (why: string) => Error): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  let n = 0
  for (const [i, text] of texts.entries()) {
    const where = texts.length === 1 ? '' : `[${i}] `
    if (typeof text !== 'string') throw fail(`${where}must be PEM text, got ${typeof text}`)
    const blocks = splitPem(text)
    if (blocks.length === 0) throw fail(`${where}holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`)
    for (const pem of blocks) {
      n++
      const label = labelOf(pem)
      if (label !== 'CERTIFICATE') throw fail(`${where}holds a "${label}" block; only root CA certificates ("CERTIFICATE") belong there`)
      let info: CertificateInfo
      let cert: X509Certificate
      try {
        info = describeCertificate(pem)
        cert = new X509Certificate(pem)
      } catch (cause) {
        throw fail(`${where}certificate ${n} cannot be parsed: ${(cause as Error).message}`)
      }
      const what = `${where}certificate ${n} (${info.subject})`
      if (info.keyAlgorithm !== 'Ed25519') throw fail(`${what} has a ${info.keyAlgorithm} key; AgentMesh roots are Ed25519`)
      if (info.role !== 'root-ca') throw fail(`${what} is not a root CA certificate (it is ${info.role === 'organisation-ca' ? 'an organisation CA; trust its root instead' : `a certificate of role "${info.role}"`})`)
      if (!cert.verify(cert.publicKey)) throw fail(`${what}: its self-signature does not verify`)
      if (seen.has(cert.fingerprint256)) continue
      seen.add(cert.fingerprint256)
      out.push(pem)
    }
  }
  if (out.length > MAX_TRUST_ROOTS) throw fail(`holds ${out.length} root certificates; at most ${MAX_TRUST_ROOTS}`)
  return out
}

/**
 * Reads a PEM file of root CA certificates (`agentmesh serve --trust-roots`, AGENTMESH_TRUST_ROOTS).
 * A missing, unreadable or wrong file is AM_ERR_INVALID_CONFIG naming the file and what is wrong.
 */
export function loadTrustRoots (path: string): string[] {
  const fail = (why: string): AgentMeshError => new AgentMeshError(ErrorCode.InvalidConfig, `trust roots file ${path} ${why}`)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    throw new AgentMeshError(ErrorCode.InvalidConfig,
      code === 'ENOENT' ? `trust roots file ${path} does not exist` : `cannot read trust roots file ${path}: ${code ?? String(cause)}`, { cause })
  }
  return checkTrustRoots([text], fail)
}

// ---------------------------------------------------------------------------------------------
// CRL signatures (RFC 5280 §5.1)

interface Tlv { tag: number, start: number, body: number, end: number }

function tlv (der: Buffer, at: number): Tlv {
  if (at + 2 > der.length) throw new Error('truncated')
  const tag = der[at]!
  let len = der[at + 1]!
  let body = at + 2
  if ((len & 0x80) !== 0) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || body + n > der.length) throw new Error('bad length')
    len = 0
    for (let k = 0; k < n; k++) len = len * 256 + der[body++]!
  }
  const end = body + len
  if (end > der.length) throw new Error('truncated')
  return { tag, start: at, body, end }
}

/**
 * Whether a CRL (DER) carries an Ed25519 signature by `key` over its tbsCertList:
 * CertificateList ::= SEQUENCE { tbsCertList SEQUENCE, signatureAlgorithm SEQUENCE, signatureValue BIT STRING }.
 */
function crlSignedBy (der: Buffer, key: KeyObject): boolean {
  if (key.asymmetricKeyType !== 'ed25519') return false
  try {
    const outer = tlv(der, 0)
    const tbs = tlv(der, outer.body)
    const alg = tlv(der, tbs.end)
    const sig = tlv(der, alg.end)
    if (outer.tag !== 0x30 || tbs.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03 || sig.end !== outer.end) return false
    if (!der.subarray(alg.body, alg.end).equals(ED25519_ALGORITHM) || der[sig.body] !== 0) return false
    return verifySignature(null, der.subarray(tbs.start, tbs.end), key, der.subarray(sig.body + 1, sig.end))
  } catch {
    return false
  }
}

function pemBody (pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, ''), 'base64')
}

// ---------------------------------------------------------------------------------------------
// Trust: verify chains, re-derive tiers, accept CRLs

/** What a stored chain is worth now. */
export interface CertificateStatus {
  state: 'valid' | 'expired' | 'revoked' | 'untrusted'
  /** The tier it gives now: the chain's while valid, else anonymous. */
  tier: TrustTier
  /** The organisation, while valid and of the organisation tier. */
  organisation?: string
  /** Why it is not valid (AM_ERR_CERT_REVOKED, AM_ERR_CERT_EXPIRED or AM_ERR_CERT_CHAIN_BROKEN). */
  error?: AgentMeshError
}

interface Root { pem: string, cert: X509Certificate, subject: string, key: string }

interface IndexedCrl { issuer: string, thisUpdate: number, revoked: Map<string, number> }

export interface Trust {
  /** The trust roots (PEM), as configured. */
  readonly roots: readonly string[]
  /**
   * Verifies a chain (one PEM certificate per entry, the agent certificate first) published by
   * `amid` at `now`; answers the record to store and the organisation CAs it vouches for. Stores
   * nothing. Throws AM_ERR_CERT_* naming the link, or AM_ERR_FORBIDDEN for another agent's chain.
   */
  verify (amid: string, chain: readonly string[], now: number): Promise<{ record: CertificateRecord, cas: CaCertificateRecord[] }>
  /** The status of a stored chain at `now`. */
  status (record: CertificateRecord, now: number): Promise<CertificateStatus>
  /** Checks a PEM CRL and stores it when it is the newest of its CA; throws AM_ERR_CERT_*, AM_ERR_CRL_OUTDATED. */
  acceptCrl (text: string, now: number): Promise<{ crl: CrlRecord, result: Exclude<PutCrlResult, { status: 'outdated' }> }>
}

export function createTrust (store: Store, trustRoots: readonly string[]): Trust {
  const roots: Root[] = trustRoots.map(pem => {
    const cert = new X509Certificate(pem)
    return { pem, cert, subject: describeCertificate(pem).subject, key: keyId(cert) }
  })
  const rootKeys = new Set(roots.map(r => r.key))
  let index: Promise<Map<string, IndexedCrl>> | undefined

  function indexed (crl: CrlRecord): IndexedCrl {
    const revoked = new Map<string, number>()
    for (const e of parseCrl(crl.pem).revoked) revoked.set(normaliseSerial(e.serial), e.revokedAt.getTime())
    return { issuer: crl.issuer, thisUpdate: crl.thisUpdate, revoked }
  }

  /** CA key → its newest CRL's revoked serials; loaded from the Store once. */
  async function revocations (): Promise<Map<string, IndexedCrl>> {
    index ??= (async () => {
      const m = new Map<string, IndexedCrl>()
      for (const crl of await store.listCrls()) m.set(crl.issuerKey, indexed(crl))
      return m
    })()
    try {
      return await index
    } catch (err) {
      index = undefined // a failed read is tried again by the next request
      throw err
    }
  }

  async function status (record: CertificateRecord, now: number): Promise<CertificateStatus> {
    const idx = await revocations()
    for (const link of record.links) {
      const crl = idx.get(link.issuerKey)
      const at = crl?.revoked.get(link.serial)
      if (crl !== undefined && at !== undefined) {
        return {
          state: 'revoked',
          tier: 'anonymous',
          error: new CertificateError(ErrorCode.CertRevoked,
            `certificate ${link.index} (${link.subject}): was revoked by "${crl.issuer}" on ${new Date(at).toISOString()} (serial ${link.serial})`,
            { index: link.index, subject: link.subject }),
        }
      }
    }
    if (record.anchorKey !== undefined && !rootKeys.has(record.anchorKey)) {
      return {
        state: 'untrusted',
        tier: 'anonymous',
        error: new CertificateError(ErrorCode.CertChainBroken, 'the root that anchors this chain is no longer among the relay\'s trust roots'),
      }
    }
    if (now > record.notAfter) {
      return {
        state: 'expired',
        tier: 'anonymous',
        error: new CertificateError(ErrorCode.CertExpired, `the chain expired at ${new Date(record.notAfter).toISOString()} (now ${new Date(now).toISOString()})`),
      }
    }
    return { state: 'valid', tier: record.tier, ...(record.organisation === undefined ? {} : { organisation: record.organisation }) }
  }

  async function verify (amid: string, chain: readonly string[], now: number): Promise<{ record: CertificateRecord, cas: CaCertificateRecord[] }> {
    // one certificate per entry, each readable
    const pems = chain.map((text, i) => {
      const blocks = splitPem(text)
      if (blocks.length !== 1 || labelOf(blocks[0]!) !== 'CERTIFICATE') {
        throw new CertificateError(ErrorCode.CertInvalid, blocks.length === 0
          ? `certificate ${i}: chain[${i}] is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`
          : `certificate ${i}: chain[${i}] must hold exactly one PEM certificate, it holds ${blocks.length} PEM blocks (${blocks.map(labelOf).join(', ')})`, { index: i })
      }
      return blocks[0]!
    })
    const infos = pems.map((pem, i) => {
      try { return describeCertificate(pem) } catch (cause) {
        throw new CertificateError(ErrorCode.CertInvalid, `certificate ${i}: cannot be parsed (${(cause as Error).message.replace(/^the certificate cannot be parsed: /, '')})`, { index: i, cause })
      }
    })
    const leaf = infos[0]!
    if (leaf.role === 'session') {
      throw new CertificateError(ErrorCode.CertInvalid, `certificate 0 (${leaf.subject}): is a session certificate; publish the agent certificate (and its issuers) instead`, { index: 0, subject: leaf.subject })
    }
    // the chain must certify the agent that signed the request (checked again, verified, below)
    if (leaf.amid !== undefined && leaf.amid !== amid) {
      throw new AgentMeshError(ErrorCode.Forbidden, `the chain certifies ${leaf.amid}, not ${amid}; an agent publishes only its own certificate`)
    }
    const verified = await verifyChain(pems, { roots: roots.map(r => r.pem), now: new Date(now) })
    if (verified.amid !== amid) {
      throw new AgentMeshError(ErrorCode.Forbidden, `the chain certifies ${verified.amid}, not ${amid}; an agent publishes only its own certificate`)
    }

    // what a CRL can revoke: every certificate a CA issued, with that CA's key
    const certs = pems.map(pem => new X509Certificate(pem))
    const links: CertificateLink[] = []
    let anchorKey: string | undefined
    for (const [i, info] of infos.entries()) {
      if (info.selfIssued) {
        // a root at the end of the chain, or a self-signed (anonymous) agent certificate
        if (info.role === 'root-ca') anchorKey = keyId(certs[i]!)
        continue
      }
      let issuer = certs[i + 1]
      if (issuer === undefined) {
        const root = roots.find(r => r.subject === info.issuer && certs[i]!.verify(r.cert.publicKey))
        if (root === undefined) throw new AgentMeshError(ErrorCode.Internal, `the trust root of ${info.subject} was not found after verification`)
        issuer = root.cert
        anchorKey = root.key
      }
      links.push({ index: i, subject: info.subject, serial: normaliseSerial(info.serial), issuerKey: keyId(issuer) })
    }
    const record: CertificateRecord = {
      amid,
      chain: pems,
      tier: verified.tier,
      ...(verified.org === undefined ? {} : { organisation: verified.org }),
      notAfter: verified.notAfter.getTime(),
      ...(anchorKey === undefined ? {} : { anchorKey }),
      links,
      publishedAt: now,
    }
    // revocation: the same rule as verifyChain's, against the CRLs the relay holds
    const s = await status(record, now)
    if (s.error !== undefined) throw s.error
    const cas = infos.flatMap((info, i) => info.role === 'organisation-ca'
      ? [{ key: keyId(certs[i]!), subject: info.subject, pem: pems[i]!, addedAt: now }]
      : [])
    return { record, cas }
  }

  async function acceptCrl (text: string, now: number): Promise<{ crl: CrlRecord, result: Exclude<PutCrlResult, { status: 'outdated' }> }> {
    const blocks = splitPem(text)
    if (blocks.length !== 1 || !CRL_LABELS.has(labelOf(blocks[0]!))) {
      throw new CertificateError(ErrorCode.CertInvalid, blocks.length === 0
        ? 'the body is not a PEM CRL (no "-----BEGIN X509 CRL-----" block)'
        : `the body must hold exactly one PEM CRL, it holds ${blocks.length} PEM blocks (${blocks.map(labelOf).join(', ')})`)
    }
    const pem = blocks[0]!
    const parsed = parseCrl(pem)
    if (parsed.thisUpdate.getTime() > now + MAX_CRL_CLOCK_SKEW_MS) {
      throw new CertificateError(ErrorCode.CertInvalid, `the CRL of "${parsed.issuer}" is dated ${parsed.thisUpdate.toISOString()}, in the future (now ${new Date(now).toISOString()})`)
    }
    // its issuer must be a CA the relay knows: a trust root, or an organisation CA of a verified chain
    const known: Array<{ key: string, cert: X509Certificate }> = roots.filter(r => r.subject === parsed.issuer).map(r => ({ key: r.key, cert: r.cert }))
    for (const ca of await store.findCaCertificates(parsed.issuer)) known.push({ key: ca.key, cert: new X509Certificate(ca.pem) })
    if (known.length === 0) {
      throw new CertificateError(ErrorCode.CertChainBroken,
        `the CRL's issuer "${parsed.issuer}" is not a CA this relay knows: neither a trust root nor an organisation CA of a published chain`)
    }
    const der = pemBody(pem)
    const signer = known.find(k => crlSignedBy(der, k.cert.publicKey))
    if (signer === undefined) {
      throw new CertificateError(ErrorCode.CertInvalid, `the CRL names "${parsed.issuer}" as its issuer but is not signed by the key of that CA`)
    }
    const idx = await revocations()
    if (!idx.has(signer.key) && idx.size >= MAX_CRLS) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `the relay holds CRLs of ${idx.size} CAs, its limit (${MAX_CRLS}); it takes newer CRLs of those only`)
    }
    const crl: CrlRecord = {
      issuerKey: signer.key,
      issuer: parsed.issuer,
      thisUpdate: parsed.thisUpdate.getTime(),
      ...(parsed.nextUpdate === undefined ? {} : { nextUpdate: parsed.nextUpdate.getTime() }),
      revokedCount: parsed.revoked.length,
      pem,
      storedAt: now,
    }
    const result = await store.putCrl(crl)
    if (result.status === 'outdated') {
      throw new AgentMeshError(ErrorCode.CrlOutdated,
        `this CRL of "${crl.issuer}" was issued ${new Date(crl.thisUpdate).toISOString()}; the relay holds one issued ${new Date(result.current.thisUpdate).toISOString()} and keeps it (upload a newer CRL)`)
    }
    if (result.status === 'unchanged') {
      // answer the stored one (its storedAt), which is this CRL
      return { crl: (await store.listCrls()).find(x => x.issuerKey === crl.issuerKey) ?? crl, result }
    }
    if (result.status === 'stored') {
      // concurrent uploads finish in any order: the index, like the Store, keeps the newest
      const had = idx.get(crl.issuerKey)
      if (had === undefined || had.thisUpdate < crl.thisUpdate) idx.set(crl.issuerKey, indexed(crl))
    }
    return { crl, result }
  }

  return { roots: roots.map(r => r.pem), verify, status, acceptCrl }
}
