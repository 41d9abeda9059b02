/**
 * `agentmesh cert`, run in process: root → organisation → agent, show, verify, revoke, publish to
 * a relay started by `serve --trust-roots`, and a coded one-line error (never a stack trace) for each subcommand.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { cli, spawnRelay, tempDir, type CliResult } from '@agentmesh/testing'

/** Asserts a failed run: exit code, one line on stderr with the code, no stack trace. */
function assertError (r: CliResult, code: string, exit: number, message?: RegExp, json = false): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`)
  assert.equal(r.stdout, '', 'nothing on stdout')
  const errLines = r.stderr.split('\n').filter(l => l !== '')
  assert.equal(errLines.length, 1, `exactly one line on stderr, got: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  let text: string
  if (json) {
    const j = JSON.parse(errLines[0]!) as { error: { code: string, message: string } }
    assert.equal(j.error.code, code)
    text = j.error.message
  } else {
    assert.match(errLines[0]!, new RegExp(`^agentmesh: error ${code}: .{10,}`))
    text = errLines[0]!
  }
  if (message !== undefined) assert.match(text, message)
}

function json (r: CliResult): Record<string, unknown> {
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.lines.length, 1, r.stdout)
  return JSON.parse(r.lines[0]!) as Record<string, unknown>
}

describe('cli cert', () => {
  const dir = tempDir('agentmesh-cert-cli-')
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

  it('cli cert - root create, org create: CA directories 0700 with the key 0600, the certificate path on stdout', async () => {
    const r = await cli(['cert', 'root', 'create', '--name', 'Test Root', '--out', p('root')])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(r.lines, [p('root/ca.pem')])
    assert.match(r.stderr, /ca\.key is its secret key/)
    const o = json(await cli(['cert', 'org', 'create', '--org', 'Acme', '--ca', p('root'), '--out', p('acme'), '--json']))
    assert.equal(o.kind, 'organisation')
    assert.equal(o.subject, 'CN=Acme CA, O=Acme')
    assert.equal(o.org, 'Acme')
    assert.equal(o.key, p('acme/ca.key'))
    assert.match(o.serial as string, /^[0-9a-f]{32}$/)
    for (const ca of ['root', 'acme']) {
      assert.equal(statSync(p(ca)).mode & 0o777, 0o700)
      assert.equal(statSync(p(`${ca}/ca.key`)).mode & 0o777, 0o600)
      assert.equal(statSync(p(`${ca}/ca.pem`)).mode & 0o777, 0o644)
      assert.equal(statSync(p(`${ca}/crl.pem`)).mode & 0o777, 0o644)
      assert.match(readFileSync(p(`${ca}/ca.key`), 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
    }
  })

  it('cli cert - issue, show, verify: organisation, verified and anonymous; revoke makes verify fail with the link named', async () => {
    // alice from her home under the organisation; bob by AMID under the root; alice self-signed
    const [ia, ib, is] = await Promise.all([
      cli(['cert', 'issue', '--ca', p('acme'), '--out', p('alice.pem'), '--json'], { home: p('alice') }),
      cli(['cert', 'issue', '--ca', p('root'), '--amid', bob, '--out', p('bob.pem')]),
      cli(['cert', 'issue', '--self-signed', '--out', p('alice-self.pem'), '--json'], { home: p('alice') }),
    ])
    const a = json(ia)
    assert.equal(a.amid, alice)
    assert.equal(a.tier, 'verified')
    assert.equal(a.chain_length, 2)
    assert.equal(ib.code, 0, ib.stderr)
    assert.match(ib.lines[0]!, /^[0-9a-f]{32}$/) // the serial alone
    assert.equal(json(is).tier, 'anonymous')
    assert.equal(readFileSync(p('alice.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----/g)!.length, 2)

    const show = await cli(['cert', 'show', p('alice.pem'), '--json'])
    assert.equal(show.code, 0, show.stderr)
    const [leaf, ca] = show.lines.map(l => JSON.parse(l) as Record<string, unknown>)
    assert.equal(leaf!.role, 'agent')
    assert.equal(leaf!.tier, 'verified')
    assert.equal(leaf!.amid, alice)
    assert.equal(leaf!.subject, `CN=${alice}, O=Acme`)
    assert.equal(leaf!.issuer, 'CN=Acme CA, O=Acme')
    assert.equal(leaf!.serial, a.serial)
    assert.equal(leaf!.not_after, a.not_after)
    assert.equal(ca!.role, 'organisation-ca')
    const showText = await cli(['cert', 'show', p('bob.pem')])
    assert.match(showText.stdout, new RegExp(`certificate 0: agent \\(tier verified\\)\\n  subject:  CN=${bob}\\n  issuer:   CN=Test Root\\n  amid:     ${bob}\\n`))
    assert.match(showText.stdout, /  valid:    \d{4}-\d\d-\d\dT.* to \d{4}-/)

    const [va, vb, vs, vaText] = await Promise.all([
      cli(['cert', 'verify', p('alice.pem'), '--root', p('root/ca.pem'), '--crl', p('acme/crl.pem'), '--json']),
      cli(['cert', 'verify', p('bob.pem'), '--root', p('root/ca.pem'), '--json']),
      cli(['cert', 'verify', p('alice-self.pem'), '--json']),
      cli(['cert', 'verify', p('alice.pem'), '--root', p('root/ca.pem')]),
    ])
    const ja = json(va)
    assert.deepEqual({ ...ja, not_after: undefined }, { valid: true, tier: 'organisation', amid: alice, org: 'Acme', not_after: undefined })
    assert.equal(json(vb).tier, 'verified')
    assert.equal(json(vs).tier, 'anonymous')
    assert.deepEqual(vaText.lines, [`organisation ${alice} (Acme)`])

    const rv = json(await cli(['cert', 'revoke', '--ca', p('acme'), '--serial', a.serial as string, '--json']))
    assert.deepEqual(rv, { serial: a.serial, revoked: true, already: false, crl: p('acme/crl.pem'), count: 1 })
    assert.equal(statSync(p('acme/crl.pem')).mode & 0o777, 0o644)
    const again = json(await cli(['cert', 'revoke', '--ca', p('acme'), '--serial', (a.serial as string).toUpperCase(), '--json']))
    assert.equal(again.already, true)
    assert.equal(again.count, 1)
    const crlShow = await cli(['cert', 'show', p('acme/crl.pem'), '--json'])
    const crl = JSON.parse(crlShow.lines[0]!) as { type: string, issuer: string, revoked: Array<{ serial: string }> }
    assert.equal(crl.type, 'crl')
    assert.deepEqual(crl.revoked.map(e => e.serial), [a.serial])

    const revoked = await cli(['cert', 'verify', p('alice.pem'), '--root', p('root/ca.pem'), '--crl', p('acme/crl.pem')])
    assertError(revoked, 'AM_ERR_CERT_REVOKED', 1, new RegExp(`certificate 0 \\(CN=${alice}, O=Acme\\): was revoked by "CN=Acme CA, O=Acme"`))
    // the revocation is the organisation's: bob's certificate from the root is not affected
    assert.equal(json(await cli(['cert', 'verify', p('bob.pem'), '--root', p('root/ca.pem'), '--crl', p('acme/crl.pem'), '--json'])).tier, 'verified')
  })

  it('cli cert - verify names the failing link: wrong root, expired (--at), the organisation CA missing', async () => {
    await cli(['cert', 'root', 'create', '--name', 'Other Root', '--out', p('other')])
    writeFileSync(p('alice-leaf.pem'), readFileSync(p('alice.pem'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0]!)
    const [wrongRoot, expired, missing, jsonErr] = await Promise.all([
      cli(['cert', 'verify', p('alice.pem'), '--root', p('other/ca.pem')]),
      cli(['cert', 'verify', p('bob.pem'), '--root', p('root/ca.pem'), '--at', '2100-01-01T00:00:00Z']),
      cli(['cert', 'verify', p('alice-leaf.pem'), '--root', p('root/ca.pem')]),
      cli(['cert', 'verify', p('bob.pem'), '--json']),
    ])
    assertError(wrongRoot, 'AM_ERR_CERT_CHAIN_BROKEN', 1, /certificate 1 \(CN=Acme CA, O=Acme\): its issuer "CN=Test Root" is neither the next certificate in the chain nor a trusted root/)
    assertError(expired, 'AM_ERR_CERT_EXPIRED', 1, new RegExp(`certificate 0 \\(CN=${bob}\\): expired at`))
    assertError(missing, 'AM_ERR_CERT_CHAIN_BROKEN', 1, /certificate 0 \(CN=am\w+, O=Acme\): its issuer "CN=Acme CA, O=Acme" is neither/)
    assertError(jsonErr, 'AM_ERR_CERT_CHAIN_BROKEN', 1, /^certificate 0 \(CN=am\w+\): its issuer "CN=Test Root"/, true)
  })

  it('cli cert - wrong paths and flags are one coded line per subcommand, usage errors exit 2', async () => {
    writeFileSync(p('garbage.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    const runs = await Promise.all([
      cli(['cert', 'root', 'create', '--out', p('r2')]),
      cli(['cert', 'root', 'create', '--name', 'Again', '--out', p('root')]),
      cli(['cert', 'org', 'create', '--org', 'X', '--ca', p('no-such-ca'), '--out', p('x')]),
      cli(['cert', 'issue', '--ca', p('root'), '--amid', 'amNOTANAMID', '--out', p('x.pem')]),
      cli(['cert', 'issue', '--ca', p('root'), '--amid', bob, '--tier', 'gold', '--out', p('x.pem')]),
      cli(['cert', 'issue', '--ca', p('root'), '--amid', bob, '--out', p('no-dir/x.pem')]),
      cli(['cert', 'show', p('does-not-exist.pem')]),
      cli(['cert', 'show', p('garbage.pem')]),
      cli(['cert', 'verify', p('bob.pem'), '--root', p('root')]),
      cli(['cert', 'revoke', '--ca', p('acme'), '--serial', 'not-hex']),
      cli(['cert', 'frobnicate', '--json']),
    ])
    const expect: Array<[string, number, RegExp, boolean?]> = [
      ['AM_ERR_INVALID_ARGUMENT', 2, /required option '--name <name>' not specified \(see `agentmesh cert root create --help`\)/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /already holds a CA \(ca\.key\); refusing to overwrite its key/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /no CA in .*no-such-ca: .*ca\.pem does not exist/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /--amid "amNOTANAMID" is not an AMID/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /--tier must be "verified" or "anonymous", got "gold"/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /cannot write .*no-dir\/x\.pem: its directory does not exist/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /does-not-exist\.pem: no such file/],
      ['AM_ERR_CERT_INVALID', 1, /certificate 0 in .*garbage\.pem cannot be parsed/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /--root .*root is a directory, not a PEM file/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /serial "not-hex" is not a hexadecimal serial number/],
      ['AM_ERR_INVALID_ARGUMENT', 2, /unknown command 'frobnicate'/, true],
    ]
    assert.equal(runs.length, expect.length)
    for (const [i, [code, exit, re, asJson]] of expect.entries()) assertError(runs[i]!, code, exit, re, asJson === true)
  })

  it('cli cert - publish: a chain sets the agent\'s tier on a relay that trusts the root; the root\'s CRL published after revokes it', async () => {
    const r = await cli(['cert', 'root', 'create', '--name', 'Publish Root', '--out', p('proot')])
    assert.equal(r.code, 0, r.stderr)
    // a real `serve --trust-roots`: the flag is part of what is checked
    const relay = await spawnRelay({ memory: true, args: ['--trust-roots', p('proot/ca.pem')] })
    try {
      const home = p('carol')
      const carol = json(await cli(['init', '--name', 'carol', '--json'], { home, server: relay.url })).amid as string
      const issued = json(await cli(['cert', 'issue', '--ca', p('proot'), '--out', p('carol.pem'), '--json'], { home }))
      const pub = json(await cli(['cert', 'publish', p('carol.pem'), '--json'], { home, server: relay.url }))
      assert.equal(pub.tier, 'verified')
      assert.equal(pub.status, 'valid')
      const profile = await (await fetch(`${relay.url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/api/v1/agents/${carol}`)).json() as { tier: string }
      assert.equal(profile.tier, 'verified')
      // revoked by its CA: the CA's CRL, published, drops the tier
      assert.equal((await cli(['cert', 'revoke', '--ca', p('proot'), '--serial', issued.serial as string])).code, 0)
      const crl = json(await cli(['cert', 'publish', p('proot/crl.pem'), '--json'], { server: relay.url }))
      assert.equal(crl.status, 'stored')
      const after = await (await fetch(`${relay.url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/api/v1/agents/${carol}`)).json() as { tier: string }
      assert.equal(after.tier, 'anonymous')
      // publishing the revoked chain again is refused with its code; a file without PEM is a clear error
      assertError(await cli(['cert', 'publish', p('carol.pem')], { home, server: relay.url }), 'AM_ERR_CERT_REVOKED', 1)
      writeFileSync(p('junk.pem'), 'not a certificate')
      assertError(await cli(['cert', 'publish', p('junk.pem')], { home, server: relay.url }), 'AM_ERR_CERT_INVALID', 1, /no certificate or CRL/)
      assertError(await cli(['cert', 'publish', p('missing.pem')], { home, server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2, /no such file/)
    } finally {
      await relay.kill()
    }
  })
})
