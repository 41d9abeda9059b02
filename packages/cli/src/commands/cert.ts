/**
 * `agentmesh cert`: the certificate chain of DESIGN.md layer 1 (root CA → organisation CA → agent →
 * session), as files: a CA is a directory (ca.pem, ca.key 0600, crl.pem), a chain is one PEM file,
 * leaf first; a session is session.pem and session.key (0600) in the agent's home.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import {
  CA_FILES, DEFAULT_CRL_VALIDITY_DAYS, DEFAULT_SESSION_CERT_VALIDITY_HOURS, MAX_SESSION_CERT_VALIDITY_HOURS, SESSION_FILES,
  createCrl, createRootCa, describeCertificate, generateKeyPair, issueAgentCert, issueOrgCa, issueSessionCert, loadCa,
  loadIdentity, normaliseSerial, parseCrl, publicKeyFromAmid, saveCa, saveSession, selfSignAgentCert, splitPem, verifyChain,
  verifySessionCert, writePublicFile,
  type AgentCertTier, type CertificateAuthority, type CertificateInfo, type IssuedCertificate, type ParsedCrl,
} from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { checkAmid, homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { output, parseInteger, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { registryRequest } from '../registry.ts'

interface JsonOpt { json?: boolean }

const CRL_LABELS = new Set(['X509 CRL', 'CRL'])

function withJson (cmd: Command): Command {
  return cmd.option('--json', 'one JSON object per line on stdout; errors as JSON on stderr')
}

function collect (value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** Reads a file named on the command line: a missing one is a usage error that names the flag. */
function readArg (flag: string | undefined, path: string): string {
  const what = flag === undefined ? path : `${flag} ${path}`
  try {
    return readFileSync(path, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw usage(`${what}: no such file`)
    if (code === 'EISDIR') throw usage(`${what} is a directory, not a PEM file`)
    throw new AgentMeshError(ErrorCode.DataDir, `cannot read ${path}: ${code ?? String(cause)}`, { cause })
  }
}

function certificatesIn (flag: string | undefined, path: string): string[] {
  const pems = splitPem(readArg(flag, path), 'CERTIFICATE')
  if (pems.length === 0) throw new AgentMeshError(ErrorCode.CertInvalid, `${flag === undefined ? path : `${flag} ${path}`} holds no certificate (no "-----BEGIN CERTIFICATE-----" block)`)
  return pems
}

function crlsIn (flag: string, path: string): string[] {
  const pems = splitPem(readArg(flag, path)).filter(p => CRL_LABELS.has(/^-----BEGIN ([A-Z0-9 ]+)-----/.exec(p)![1]!))
  if (pems.length === 0) throw new AgentMeshError(ErrorCode.CertInvalid, `${flag} ${path} holds no CRL (no "-----BEGIN X509 CRL-----" block)`)
  return pems
}

function loadCaArg (dir: string): CertificateAuthority {
  return loadCa(resolve(dir))
}

function days (flag: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseInteger(flag, value, 1, 36_500)
}

function caResult (out: Out, ca: CertificateAuthority, dir: string): void {
  out.note(`${ca.kind === 'root' ? 'root' : 'organisation'} CA ${ca.subject} written to ${dir}; ${CA_FILES.key} is its secret key (0600)` +
    (ca.kind === 'root' ? `; give ${join(dir, CA_FILES.cert)} to verifiers (--root)` : ''))
  out.result({
    kind: ca.kind,
    subject: ca.subject,
    ...(ca.org === undefined ? {} : { org: ca.org }),
    serial: ca.serial,
    not_after: ca.notAfter.toISOString(),
    dir,
    cert: join(dir, CA_FILES.cert),
    key: join(dir, CA_FILES.key),
    crl: join(dir, CA_FILES.crl),
  }, join(dir, CA_FILES.cert))
}

async function saveNewCa (ca: CertificateAuthority, dir: string): Promise<void> {
  // refuse an existing CA before anything is written
  saveCa(dir, ca, { crlPem: await createCrl(ca, []) })
}

function certJson (i: number, c: CertificateInfo): Record<string, unknown> {
  return {
    type: 'certificate',
    index: i,
    role: c.role,
    subject: c.subject,
    issuer: c.issuer,
    serial: c.serial,
    not_before: c.notBefore.toISOString(),
    not_after: c.notAfter.toISOString(),
    ...(c.tier === undefined ? {} : { tier: c.tier }),
    ...(c.amid === undefined ? {} : { amid: c.amid }),
    ...(c.org === undefined ? {} : { org: c.org }),
    key_algorithm: c.keyAlgorithm,
  }
}

const ROLE_TEXT: Record<CertificateInfo['role'], string> = {
  'root-ca': 'root CA',
  'organisation-ca': 'organisation CA',
  agent: 'agent',
  session: 'session',
  unknown: 'not an AgentMesh certificate',
}

function certText (i: number, c: CertificateInfo): string {
  const lines = [
    `certificate ${i}: ${ROLE_TEXT[c.role]}${c.tier === undefined ? '' : ` (tier ${c.tier})`}`,
    `  subject:  ${c.subject}`,
    `  issuer:   ${c.issuer}${c.selfIssued ? ' (self-signed)' : ''}`,
    ...(c.amid === undefined ? [] : [`  amid:     ${c.amid}`]),
    ...(c.org === undefined ? [] : [`  org:      ${c.org}`]),
    `  serial:   ${c.serial}`,
    `  valid:    ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}`,
    `  key:      ${c.keyAlgorithm}`,
  ]
  return lines.join('\n')
}

function crlJson (i: number, c: ParsedCrl): Record<string, unknown> {
  return {
    type: 'crl',
    index: i,
    issuer: c.issuer,
    this_update: c.thisUpdate.toISOString(),
    ...(c.nextUpdate === undefined ? {} : { next_update: c.nextUpdate.toISOString() }),
    revoked: c.revoked.map(r => ({ serial: r.serial, revoked_at: r.revokedAt.toISOString() })),
  }
}

function crlText (i: number, c: ParsedCrl): string {
  return [
    `crl ${i}`,
    `  issuer:   ${c.issuer}`,
    `  updated:  ${c.thisUpdate.toISOString()}${c.nextUpdate === undefined ? '' : `, next by ${c.nextUpdate.toISOString()}`}`,
    `  revoked:  ${c.revoked.length === 0 ? 'none' : c.revoked.map(r => `${r.serial} (${r.revokedAt.toISOString()})`).join(', ')}`,
  ].join('\n')
}

export function certCommands (program: Command, io: CliIo = processIo()): void {
  const cert = program.command('cert')
    .description('X.509 certificates (Ed25519): root and organisation CAs, agent and session certificates, verification, revocation')

  const root = cert.command('root').description('root certificate authority')
  withJson(root.command('create')
    .description('create a root CA (self-signed, new Ed25519 key) in a directory: ca.pem, ca.key (0600), crl.pem')
    .requiredOption('--name <name>', 'subject CN of the root, 1–64 characters')
    .requiredOption('--out <dir>', 'directory to create the CA in (must not hold one already)')
    .option('--days <n>', 'validity in days (default 3650)'))
    .action(async (o: JsonOpt & { name: string, out: string, days?: string }) => {
      const out = output(o.json === true, io)
      const dir = resolve(o.out)
      const validityDays = days('--days', o.days)
      const ca = await createRootCa({ name: o.name, ...(validityDays === undefined ? {} : { validityDays }) })
      await saveNewCa(ca, dir)
      caResult(out, ca, dir)
    })

  const org = cert.command('org').description('organisation certificate authority')
  withJson(org.command('create')
    .description('create an organisation CA signed by a root CA: agents it certifies get the organisation tier')
    .requiredOption('--org <org>', 'organisation name (subject O), 1–64 characters')
    .requiredOption('--ca <dir>', 'the root CA directory')
    .requiredOption('--out <dir>', 'directory to create the organisation CA in')
    .option('--name <name>', 'subject CN (default "<org> CA")')
    .option('--days <n>', 'validity in days (default 1825, never past the root)'))
    .action(async (o: JsonOpt & { org: string, ca: string, out: string, name?: string, days?: string }) => {
      const out = output(o.json === true, io)
      const dir = resolve(o.out)
      const validityDays = days('--days', o.days)
      const rootCa = loadCaArg(o.ca)
      const ca = await issueOrgCa(rootCa, {
        org: o.org,
        ...(o.name === undefined ? {} : { name: o.name }),
        ...(validityDays === undefined ? {} : { validityDays }),
      })
      await saveNewCa(ca, dir)
      caResult(out, ca, dir)
    })

  withCommon(cert.command('issue')
    .description('issue an agent certificate and write its chain (leaf first, without the root) to a file; prints the serial')
    .option('--ca <dir>', 'the issuing CA directory (root or organisation)')
    .option('--self-signed', 'sign with the local identity instead: an anonymous certificate')
    .option('--amid <amid>', 'the agent to certify (default: the local identity in --home)')
    .option('--tier <tier>', 'verified or anonymous (default verified; anonymous when --self-signed)')
    .option('--days <n>', 'validity in days (default and most: 365 verified, 90 anonymous)')
    .requiredOption('--out <file>', 'where to write the chain (PEM)'), { server: false })
    .action(async (o: CommonOpts & { ca?: string, selfSigned?: boolean, amid?: string, tier?: string, days?: string, out: string }) => {
      const out = output(o.json === true, io)
      if (o.tier !== undefined && o.tier !== 'verified' && o.tier !== 'anonymous') throw usage(`--tier must be "verified" or "anonymous", got "${o.tier}"`)
      const file = resolve(o.out)
      const validityDays = days('--days', o.days)
      let chain: IssuedCertificate
      let amid: string
      let tier: AgentCertTier
      if (o.selfSigned === true) {
        if (o.ca !== undefined) throw usage('--ca and --self-signed are mutually exclusive')
        if (o.amid !== undefined) throw usage('--self-signed signs with the local identity (--home); --amid cannot be used with it')
        if (o.tier === 'verified') throw usage('a self-signed certificate is anonymous; --tier verified needs a CA (--ca)')
        const id = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
        amid = id.amid
        tier = 'anonymous'
        chain = await selfSignAgentCert(id, validityDays === undefined ? {} : { validityDays })
      } else {
        if (o.ca === undefined) throw usage('give the issuing CA (--ca <dir>), or --self-signed for an anonymous certificate')
        if (o.amid !== undefined) checkAmid('--amid', o.amid)
        const ca = loadCaArg(o.ca)
        amid = o.amid ?? loadIdentity(homeOf(o, io.env), passphraseOf(io.env)).amid
        tier = o.tier === 'anonymous' ? 'anonymous' : 'verified'
        chain = await issueAgentCert(ca, {
          amid, publicKey: publicKeyFromAmid(amid), tier, ...(validityDays === undefined ? {} : { validityDays }),
        })
      }
      writePublicFile(file, chain.chainPem.join(''))
      out.note(`certificate for ${amid} (tier ${tier}) written to ${file} with its chain; valid until ${chain.notAfter.toISOString()}`)
      out.result({
        amid, tier, serial: chain.serial, not_before: chain.notBefore.toISOString(), not_after: chain.notAfter.toISOString(),
        file, chain_length: chain.chainPem.length,
      }, chain.serial)
    })

  withCommon(cert.command('session')
    .description(`issue a short-lived session certificate for a new session key, signed by the local identity; writes <home>/${SESSION_FILES.cert} and <home>/${SESSION_FILES.key} (0600); prints the serial`)
    .option('--hours <n>', `validity in hours (default ${DEFAULT_SESSION_CERT_VALIDITY_HOURS}, at most ${MAX_SESSION_CERT_VALIDITY_HOURS}; never past the agent certificate)`)
    .option('--chain <file>', 'this agent\'s certificate chain (as `cert issue` writes it): appended, so the relay gives the session the chain\'s tier'), { server: false })
    .action(async (o: CommonOpts & { hours?: string, chain?: string }) => {
      const out = output(o.json === true, io)
      const hours = o.hours === undefined ? DEFAULT_SESSION_CERT_VALIDITY_HOURS : parseInteger('--hours', o.hours, 1, MAX_SESSION_CERT_VALIDITY_HOURS)
      const home = homeOf(o, io.env)
      const id = loadIdentity(home, passphraseOf(io.env))
      let agentChainPem: string[] = []
      if (o.chain !== undefined) {
        agentChainPem = certificatesIn('--chain', o.chain)
        const leaf = describeCertificate(agentChainPem[0]!)
        if (leaf.role !== 'agent') {
          throw new AgentMeshError(ErrorCode.CertInvalid, `--chain ${o.chain} must start with this agent's certificate; its first certificate is ${ROLE_TEXT[leaf.role]} (${leaf.subject})`)
        }
        if (leaf.amid !== id.amid) {
          throw new AgentMeshError(ErrorCode.CertInvalid, `--chain ${o.chain} certifies ${leaf.amid ?? 'no AMID'}, not this agent (${id.amid}); give the chain \`cert issue\` wrote for ${id.amid}`)
        }
        if (leaf.notAfter.getTime() < Date.now()) {
          throw new AgentMeshError(ErrorCode.CertExpired, `the agent certificate in --chain ${o.chain} expired at ${leaf.notAfter.toISOString()}; issue a new one (\`agentmesh cert issue\`) first`)
        }
      }
      const keys = generateKeyPair()
      const s = await issueSessionCert(id, { sessionPublicKey: keys.publicKey, validityHours: hours, agentChainPem })
      const paths = { cert: join(home, SESSION_FILES.cert), key: join(home, SESSION_FILES.key) }
      saveSession(paths, keys, s.chainPem)
      out.note(`session certificate for ${id.amid} written to ${paths.cert}, its key to ${paths.key} (0600); valid until ${s.notAfter.toISOString()}; use it with AGENTMESH_SESSION=${paths.cert}`)
      out.result({
        amid: id.amid,
        session_public_key: Buffer.from(keys.publicKey).toString('base64url'),
        serial: s.serial,
        not_before: s.notBefore.toISOString(),
        not_after: s.notAfter.toISOString(),
        cert: paths.cert,
        key: paths.key,
        chain_length: s.chainPem.length,
      }, s.serial)
    })

  withJson(cert.command('show')
    .description('print what a PEM file holds (certificates, CRLs): subject, issuer, validity, tier, AMID; verifies nothing')
    .argument('<file>', 'a PEM file: a certificate, a chain, a CRL'))
    .action((path: string, o: JsonOpt) => {
      const out = output(o.json === true, io)
      const blocks = splitPem(readArg(undefined, path))
      const certs = blocks.filter(b => b.startsWith('-----BEGIN CERTIFICATE-----'))
      const crls = blocks.filter(b => CRL_LABELS.has(/^-----BEGIN ([A-Z0-9 ]+)-----/.exec(b)![1]!))
      if (certs.length + crls.length === 0) throw new AgentMeshError(ErrorCode.CertInvalid, `${path} holds no certificate or CRL (PEM)`)
      const texts: string[] = []
      const rows: Array<Record<string, unknown>> = []
      for (const [i, pem] of certs.entries()) {
        let info: CertificateInfo
        try { info = describeCertificate(pem) } catch (err) {
          throw new AgentMeshError(ErrorCode.CertInvalid, `certificate ${i} in ${path} cannot be parsed`, { cause: err })
        }
        rows.push(certJson(i, info))
        texts.push(certText(i, info))
      }
      for (const [i, pem] of crls.entries()) {
        let crl: ParsedCrl
        try { crl = parseCrl(pem) } catch (err) {
          throw new AgentMeshError(ErrorCode.CertInvalid, `CRL ${i} in ${path} cannot be parsed`, { cause: err })
        }
        rows.push(crlJson(i, crl))
        texts.push(crlText(i, crl))
      }
      if (out.json) for (const r of rows) out.result(r, '')
      else out.result({}, texts.join('\n'))
    })

  withJson(cert.command('verify')
    .description('verify a chain file (leaf first) against trusted roots and CRLs; prints the tier and AMID, or the failing link. A session certificate is checked against its agent\'s AMID (the key that must have signed it), then the chain above it when the file holds one')
    .argument('<file>', 'the chain (PEM), as `cert issue` writes it')
    .option('--root <file>', 'trusted root certificate (PEM); repeatable. Without one, only a self-signed (anonymous) certificate verifies', collect, [])
    .option('--crl <file>', 'CRL (PEM) of an issuer in the chain; repeatable', collect, [])
    .option('--at <time>', 'verify as of this time (ISO 8601) instead of now')
    .option('--amid <amid>', 'require the chain (or session certificate) to be of this agent'))
    .action(async (path: string, o: JsonOpt & { root: string[], crl: string[], at?: string, amid?: string }) => {
      const out = output(o.json === true, io)
      let now: Date | undefined
      if (o.at !== undefined) {
        now = new Date(o.at)
        if (Number.isNaN(now.getTime())) throw usage(`--at must be a time such as 2026-01-31T12:00:00Z, got "${o.at}"`)
      }
      const chain = certificatesIn(undefined, path)
      const roots = o.root.flatMap(r => certificatesIn('--root', r))
      const crls = o.crl.flatMap(c => crlsIn('--crl', c))
      let leaf: CertificateInfo | undefined
      try { leaf = describeCertificate(chain[0]!) } catch {}
      if (o.amid !== undefined) checkAmid('--amid', o.amid)
      if (leaf?.role === 'session') {
        // the last link against the AMID it names (or --amid), then the agent chain above it when present
        const amid = o.amid ?? leaf.amid
        if (amid === undefined) throw new AgentMeshError(ErrorCode.CertInvalid, `the session certificate in ${path} names no agent`)
        const v = await verifySessionCert(chain, { amid, roots, crls, ...(now === undefined ? {} : { now }) })
        out.result({
          valid: true,
          role: 'session',
          tier: v.tier,
          amid: v.amid,
          ...(v.org === undefined ? {} : { org: v.org }),
          session_public_key: Buffer.from(v.publicKey).toString('base64url'),
          serial: v.serial,
          not_before: v.notBefore.toISOString(),
          not_after: v.expiresAt.toISOString(),
        }, `session of ${v.tier} ${v.amid}${v.org === undefined ? '' : ` (${v.org})`} until ${v.expiresAt.toISOString()}`)
        return
      }
      const r = await verifyChain(chain, { roots, crls, ...(now === undefined ? {} : { now }) })
      if (o.amid !== undefined && r.amid !== o.amid) throw new AgentMeshError(ErrorCode.CertInvalid, `the chain certifies ${r.amid}, not ${o.amid}`)
      out.result({
        valid: true,
        tier: r.tier,
        amid: r.amid,
        ...(r.org === undefined ? {} : { org: r.org }),
        ...(r.sessionPublicKey === undefined ? {} : { session_public_key: Buffer.from(r.sessionPublicKey).toString('base64url') }),
        not_after: r.notAfter.toISOString(),
      }, `${r.tier} ${r.amid}${r.org === undefined ? '' : ` (${r.org})`}`)
    })

  withJson(cert.command('revoke')
    .description(`revoke a certificate issued by a CA: adds its serial to <dir>/${CA_FILES.crl} and signs the CRL again (valid ${DEFAULT_CRL_VALIDITY_DAYS} days)`)
    .requiredOption('--ca <dir>', 'the CA directory that issued the certificate')
    .requiredOption('--serial <hex>', 'serial number, as `cert show` or `cert issue` print it'))
    .action(async (o: JsonOpt & { ca: string, serial: string }) => {
      const out = output(o.json === true, io)
      const serial = normaliseSerial(o.serial)
      const dir = resolve(o.ca)
      const ca = loadCaArg(dir)
      const crlPath = join(dir, CA_FILES.crl)
      let entries: Array<{ serial: string, revokedAt: Date }> = []
      let text: string | undefined
      try { text = readFileSync(crlPath, 'utf8') } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new AgentMeshError(ErrorCode.DataDir, `cannot read ${crlPath}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
        }
      }
      if (text !== undefined) {
        const parsed = parseCrl(text)
        if (parsed.issuer !== ca.subject) {
          throw new AgentMeshError(ErrorCode.CertInvalid, `${crlPath} is the CRL of "${parsed.issuer}", not of this CA "${ca.subject}"`)
        }
        entries = parsed.revoked
      }
      const already = entries.some(e => e.serial === serial)
      if (!already) entries.push({ serial, revokedAt: new Date() })
      writePublicFile(crlPath, await createCrl(ca, entries))
      out.note(already ? `${serial} was already revoked; ${crlPath} signed again` : `${crlPath} now lists ${entries.length} revoked certificate(s)`)
      out.result({ serial, revoked: true, already, crl: crlPath, count: entries.length }, `revoked ${serial}`)
    })

  withCommon(cert.command('publish')
    .description('publish to the relay\'s registry: a chain file (leaf first) becomes this agent\'s certificate and sets its tier; a CRL file (e.g. <ca>/crl.pem) is stored by the relay and revokes what it lists')
    .argument('<file>', 'a chain as `cert issue` writes it, or a CRL'))
    .action(async (path: string, o: CommonOpts) => {
      const out = output(o.json === true, io)
      const text = readArg(undefined, path)
      const blocks = splitPem(text)
      const crls = blocks.filter(b => CRL_LABELS.has(/^-----BEGIN ([A-Z0-9 ]+)-----/.exec(b)![1]!))
      const certs = blocks.filter(b => b.startsWith('-----BEGIN CERTIFICATE-----'))
      if (crls.length > 0 && certs.length > 0) throw usage(`${path} holds both certificates and a CRL; publish them from separate files`)
      if (crls.length > 1) throw usage(`${path} holds ${crls.length} CRLs; publish one at a time`)
      if (crls.length === 1) {
        const r = await registryRequest(serverOf(o, io.env), 'putCrl', '/api/v1/crls', { body: crls[0]!, contentType: 'application/pkix-crl' })
        out.result(r, `${r.status === 'unchanged' ? 'the relay already held this CRL' : 'CRL stored'}: ${r.crl?.issuer ?? ''} (${r.crl?.revoked_count ?? 0} revoked)`)
        return
      }
      if (certs.length === 0) throw new AgentMeshError(ErrorCode.CertInvalid, `${path} holds no certificate or CRL (PEM)`)
      const id = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
      const r = await registryRequest(serverOf(o, io.env), 'putCertificate', `/api/v1/agents/${id.amid}/certificate`, { identity: id, body: JSON.stringify({ chain: certs }) })
      out.result(r, `published: ${id.amid} is ${r.tier}${r.organisation === undefined ? '' : ` (${r.organisation})`} until ${new Date(r.expires_at).toISOString()}`)
    })

  // nested subcommands report their errors through run(), like the top-level ones
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ outputError: () => {} })
    for (const s of c.commands) quiet(s)
  }
  quiet(cert)
}
