/**
 * Auth with a session key (docs/protocol.md §3): an auth frame signed by a short-lived session key
 * carries the session certificate (and optionally the agent's chain above it). The relay checks that
 * the certificate is a session certificate of the frame's AMID signed by that AMID's key and valid
 * now; with a chain, that the chain verifies against the relay's trust roots and the CRLs it holds
 * (its tier is the session's); then the challenge signature with the session key. The core
 * (relay.ts) asks this only for auth frames that carry a session certificate.
 */
import type { KeyObject } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  CertificateError, certFromWire, describeCertificate, publicKeyObjectFromRaw, verifySessionCert, verifySessionChallenge, type TrustTier,
} from '@agentmesh/crypto'
import type { Store } from '@agentmesh/store'

/** What a verified session gives a connection. */
export interface SessionGrant {
  /** The session certificate as it came (base64url DER): envelopes of the connection carry the same. */
  cert: string
  /** The session key: it verifies the connection's envelopes that carry `cert`. */
  key: KeyObject
  serial: string
  /** ms: the earliest expiry of the session certificate and the chain above it. */
  expiresAt: number
  tier: TrustTier
  organisation?: string
}

export interface SessionVerifier {
  /**
   * Checks an auth frame signed with a session key; answers the grant, or throws: AM_ERR_CERT_*
   * for the certificate (naming the link), AM_ERR_AUTH_FAILED for the challenge signature.
   */
  verify (frame: { amid: string, nonce: string, sig: string, session_cert: string, session_chain?: readonly string[] }, relayId: string, now: number): Promise<SessionGrant>
}

function readable (wire: string, index: number): string {
  try { return certFromWire(wire) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `certificate ${index}: is not a DER certificate in base64url`, { index, cause })
  }
}

export function sessionVerifier (store: Store, trustRoots: readonly string[]): SessionVerifier {
  return {
    async verify (f, relayId, now) {
      const chainPem = [readable(f.session_cert, 0), ...(f.session_chain ?? []).map((w, i) => readable(w, i + 1))]
      // only the CRLs of issuers in the chain (the session certificate's issuer is the agent: no CRL)
      let crls: string[] = []
      if (chainPem.length > 1) {
        const issuers = new Set<string>()
        for (const pem of chainPem.slice(1)) {
          try { issuers.add(describeCertificate(pem).issuer) } catch {} // verifySessionCert names an unreadable one
        }
        crls = (await store.listCrls()).filter(c => issuers.has(c.issuer)).map(c => c.pem)
      }
      const v = await verifySessionCert(chainPem, { amid: f.amid, roots: trustRoots, crls, now: new Date(now) })
      if (!verifySessionChallenge(v.publicKey, f.amid, f.nonce, relayId, f.sig)) {
        throw new AgentMeshError(ErrorCode.AuthFailed, 'the challenge signature does not verify with the key of the session certificate')
      }
      return {
        cert: f.session_cert,
        key: publicKeyObjectFromRaw(v.publicKey),
        serial: v.serial,
        expiresAt: v.expiresAt.getTime(),
        tier: v.tier,
        ...(v.org === undefined ? {} : { organisation: v.org }),
      }
    },
  }
}
