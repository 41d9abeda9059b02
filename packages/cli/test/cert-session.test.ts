/**
 * `agentmesh cert session`, run in process: a session certificate and key in the agent's home (the
 * key 0600, never printed), `--json` fields, `--hours` bounds, `--chain`, and `cert verify` checking
 * the last link against the AMID; a coded one-line error for every bad input.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { certFromWire, certToWire, describeCertificate, publicKeyObjectFromRaw, splitPem, verifyEnvelope } from '@agentmesh/crypto'
import { assertCliError, cli, rawAgent, startRelay, tempDir, type CliResult } from '@agentmesh/testing'

function json (r: CliResult): Record<string, unknown> {
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.lines.length, 1, r.stdout)
  return JSON.parse(r.lines[0]!) as Record<string, unknown>
}

describe('cli cert session', () => {
  const dir = tempDir('agentmesh-cert-session-cli-')
  const p = (name: string): string => `${dir.path}/${name}`
  let alice: string
  let bob: string

  before(async () => {
    const [a, b] = await Promise.all([
      cli(['init', '--offline', '--name', 'alice'], { home: p('alice') }),
      cli(['init', '--offline', '--name', 'bob'], { home: p('bob') }),
    ])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    alice = a.lines[0]!
    bob = b.lines[0]!
  })
  after(() => { dir.cleanup() })

  it('cli cert session - writes the certificate and the key (0600) in the home, prints the serial, never the key', async () => {
    const r = await cli(['cert', 'session'], { home: p('alice') })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.lines.length, 1)
    assert.match(r.lines[0]!, /^[0-9a-f]{32}$/)
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/)
    assert.match(r.stderr, /AGENTMESH_SESSION=/)
    assert.equal(statSync(p('alice/session.key')).mode & 0o777, 0o600)
    assert.equal(statSync(p('alice/session.pem')).mode & 0o777, 0o644)
    const certs = splitPem(readFileSync(p('alice/session.pem'), 'utf8'), 'CERTIFICATE')
    assert.equal(certs.length, 1)
    const info = describeCertificate(certs[0]!)
    assert.equal(info.role, 'session')
    assert.equal(info.amid, alice)
    assert.equal(info.serial, r.lines[0])
    // the default lifetime: 24 hours from now (notBefore is backdated 5 minutes)
    assert.equal(info.notAfter.getTime() - info.notBefore.getTime(), 24 * 3_600_000 + 5 * 60_000)
  })

  it('cli cert session --json - the session public key, serial, validity and the file paths', async () => {
    const j = json(await cli(['cert', 'session', '--hours', '2', '--json'], { home: p('alice') }))
    assert.deepEqual(Object.keys(j).sort(), ['amid', 'cert', 'chain_length', 'key', 'not_after', 'not_before', 'serial', 'session_public_key'])
    assert.equal(j.amid, alice)
    assert.equal(j.cert, p('alice/session.pem'))
    assert.equal(j.key, p('alice/session.key'))
    assert.equal(j.chain_length, 1)
    assert.match(j.session_public_key as string, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(Date.parse(j.not_after as string) - Date.parse(j.not_before as string), 2 * 3_600_000 + 5 * 60_000)
    // verify: the last link against alice's AMID
    const v = json(await cli(['cert', 'verify', p('alice/session.pem'), '--json']))
    assert.equal(v.valid, true)
    assert.equal(v.role, 'session')
    assert.equal(v.tier, 'anonymous')
    assert.equal(v.amid, alice)
    assert.equal(v.serial, j.serial)
    assert.equal(v.session_public_key, j.session_public_key)
    assertCliError(await cli(['cert', 'verify', p('alice/session.pem'), '--amid', bob]), 'AM_ERR_CERT_INVALID', 1, new RegExp(`session certificate of ${alice}, not of ${bob}`))
    assertCliError(await cli(['cert', 'verify', p('alice/session.pem'), '--at', new Date(Date.now() + 3 * 3_600_000).toISOString()]), 'AM_ERR_CERT_EXPIRED', 1, /expired at/)
  })

  it('cli cert session --chain - the agent chain follows the session certificate and gives its tier', async () => {
    assert.equal((await cli(['cert', 'root', 'create', '--name', 'Session Root', '--out', p('root')])).code, 0)
    assert.equal((await cli(['cert', 'issue', '--ca', p('root'), '--out', p('alice-chain.pem')], { home: p('alice') })).code, 0)
    const j = json(await cli(['cert', 'session', '--chain', p('alice-chain.pem'), '--json'], { home: p('alice') }))
    assert.equal(j.chain_length, 2)
    const v = json(await cli(['cert', 'verify', p('alice/session.pem'), '--root', p('root/ca.pem'), '--json']))
    assert.equal(v.tier, 'verified')
    assert.equal(v.role, 'session')
    // without the root the chain above the session does not verify
    assertCliError(await cli(['cert', 'verify', p('alice/session.pem')]), 'AM_ERR_CERT_CHAIN_BROKEN', 1)
  })

  it('cli cert verify - a session certificate signed by another key than its AMID\'s is refused', async () => {
    const pem = splitPem(readFileSync(p('alice/session.pem'), 'utf8'), 'CERTIFICATE')[0]!
    // flip one byte of the signature (the last bytes of the DER)
    const der = Buffer.from(certToWire(pem), 'base64url')
    der[der.length - 3] = der[der.length - 3]! ^ 0x01
    writeFileSync(p('tampered.pem'), certFromWire(der.toString('base64url')))
    assertCliError(await cli(['cert', 'verify', p('tampered.pem')]), 'AM_ERR_CERT_CHAIN_BROKEN', 1, new RegExp(`does not verify with the key of ${alice}`))
  })

  it('cli cert session - bad input: hours out of range, no identity, a chain of another agent or not a chain', async () => {
    writeFileSync(p('junk.pem'), 'not a certificate\n')
    assert.equal((await cli(['cert', 'issue', '--ca', p('root'), '--out', p('bob-chain.pem')], { home: p('bob') })).code, 0)
    const [zero, many, word, noId, other, junk, missing, sessionAsChain] = await Promise.all([
      cli(['cert', 'session', '--hours', '0'], { home: p('alice') }),
      cli(['cert', 'session', '--hours', '721'], { home: p('alice') }),
      cli(['cert', 'session', '--hours', 'soon'], { home: p('alice') }),
      cli(['cert', 'session'], { home: p('nobody') }),
      cli(['cert', 'session', '--chain', p('bob-chain.pem')], { home: p('alice') }),
      cli(['cert', 'session', '--chain', p('junk.pem')], { home: p('alice') }),
      cli(['cert', 'session', '--chain', p('missing.pem')], { home: p('alice') }),
      cli(['cert', 'session', '--chain', p('alice/session.pem')], { home: p('alice') }),
    ])
    assertCliError(zero, 'AM_ERR_INVALID_ARGUMENT', 2, /--hours must be between 1 and 720, got 0/)
    assertCliError(many, 'AM_ERR_INVALID_ARGUMENT', 2, /--hours must be between 1 and 720, got 721/)
    assertCliError(word, 'AM_ERR_INVALID_ARGUMENT', 2, /--hours must be a whole number/)
    assertCliError(noId, 'AM_ERR_NO_IDENTITY', 1, /agentmesh init/)
    assertCliError(other, 'AM_ERR_CERT_INVALID', 1, new RegExp(`certifies ${bob}, not this agent \\(${alice}\\)`))
    assertCliError(junk, 'AM_ERR_CERT_INVALID', 1, /holds no certificate/)
    assertCliError(missing, 'AM_ERR_INVALID_ARGUMENT', 2, /no such file/)
    assertCliError(sessionAsChain, 'AM_ERR_CERT_INVALID', 1, /must start with this agent's certificate; its first certificate is session/)
  })

  it('cli send with AGENTMESH_SESSION - signed by the session key, carrying its certificate; a chain the relay cannot anchor is refused', async (t) => {
    const relay = await startRelay({ memory: true })
    const raw = await rawAgent(relay.wsUrl)
    t.after(async () => { raw.close(); await relay.close() })
    assert.equal((await raw.auth()).op, 'welcome')
    const j = json(await cli(['cert', 'session', '--json'], { home: p('alice') }))
    const env = { AGENTMESH_SESSION: j.cert as string }
    const r = await cli(['send', raw.id.amid, 'from a session', '--plaintext'], { home: p('alice'), server: relay.url, env })
    assert.equal(r.code, 0, r.stderr)
    const [d] = await raw.collect(f => f.op === 'deliver', 1)
    assert.equal(d!.env.from, alice)
    assert.deepEqual(d!.env.payload, { text: 'from a session' })
    assert.equal(d!.env.session_cert, certToWire(splitPem(readFileSync(j.cert as string, 'utf8'))[0]!))
    const sessionKey = publicKeyObjectFromRaw(Buffer.from(j.session_public_key as string, 'base64url'))
    assert.equal(verifyEnvelope(d!.env, sessionKey), true)
    assert.equal(verifyEnvelope(d!.env), false)

    // the session carries a chain under a root this relay does not trust
    json(await cli(['cert', 'session', '--chain', p('alice-chain.pem'), '--json'], { home: p('alice') }))
    assertCliError(await cli(['send', raw.id.amid, 'refused', '--plaintext', '--timeout', '10'], { home: p('alice'), server: relay.url, env }),
      'AM_ERR_CERT_CHAIN_BROKEN', 1, /trusted root/)
  })
})
