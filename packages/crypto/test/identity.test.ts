import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  IDENTITY_FILE, createIdentity, defaultHome, identityFromSecret, isAmid, loadIdentity, saveIdentity, signEnvelope, toB64u, verifyEnvelope,
} from '@agentmesh/crypto'

const root = mkdtempSync(join(tmpdir(), 'agentmesh-identity-test-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0
/** A path for a home directory that does not exist yet. */
const newHome = (): string => join(root, `home-${n++}`)

/** Runs `fn` and answers the AgentMeshError it threw; fails when it throws nothing or something else. */
function thrown (fn: () => unknown): AgentMeshError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof AgentMeshError, `expected an AgentMeshError, got ${String(err)}`)
    return err
  }
  assert.fail('expected an error')
}

describe('identity', () => {
  it('identity - save then load gives back the same keys, AMID and name', () => {
    const home = newHome()
    const me = createIdentity('alice')
    const path = saveIdentity(home, me)
    assert.equal(path, join(home, IDENTITY_FILE))
    const loaded = loadIdentity(home)
    assert.equal(loaded.amid, me.amid)
    assert.equal(loaded.name, 'alice')
    assert.deepEqual(loaded.secretKey, me.secretKey)
    assert.deepEqual(loaded.publicKey, me.publicKey)
    // the loaded keys sign envelopes that verify as the saved identity's
    const env = signEnvelope(loaded, { id: 'id-00000001', to: me.amid, type: 'chat', payload: {} })
    assert.equal(env.from, me.amid)
    assert.equal(verifyEnvelope(env), true)
  })

  it('identity - an identity without a name loads without a name', () => {
    const home = newHome()
    const me = createIdentity()
    saveIdentity(home, me)
    const loaded = loadIdentity(home)
    assert.equal(loaded.amid, me.amid)
    assert.equal(loaded.name, undefined)
    assert.equal('name' in JSON.parse(readFileSync(join(home, IDENTITY_FILE), 'utf8')), false)
  })

  it('identity - the file is mode 0600 in a directory of mode 0700', () => {
    const home = newHome()
    saveIdentity(home, createIdentity('alice'))
    assert.equal(statSync(home).mode & 0o777, 0o700)
    assert.equal(statSync(join(home, IDENTITY_FILE)).mode & 0o777, 0o600)
    assert.deepEqual(readdirSync(home), [IDENTITY_FILE], 'no temporary file is left behind')
  })

  it('identity - the file holds the AMID and both keys in base64url', () => {
    const home = newHome()
    const me = createIdentity('alice')
    saveIdentity(home, me)
    const body = JSON.parse(readFileSync(join(home, IDENTITY_FILE), 'utf8'))
    assert.equal(body.v, 1)
    assert.equal(body.amid, me.amid)
    assert.equal(body.name, 'alice')
    assert.equal(body.public_key, toB64u(me.publicKey))
    assert.equal(body.secret_key, toB64u(me.secretKey))
    assert.ok(!Number.isNaN(Date.parse(body.created_at)))
  })

  it('identity - saving twice is AM_ERR_IDENTITY_EXISTS and keeps the first identity', () => {
    const home = newHome()
    const first = createIdentity('first')
    saveIdentity(home, first)
    const err = thrown(() => saveIdentity(home, createIdentity('second')))
    assert.equal(err.code, ErrorCode.IdentityExists)
    assert.equal(err.message,
      `an identity already exists at ${join(home, IDENTITY_FILE)}; use --force to replace it (the old AMID is lost)`)
    assert.equal(loadIdentity(home).amid, first.amid)
  })

  it('identity - saving with force replaces the identity', () => {
    const home = newHome()
    saveIdentity(home, createIdentity('first'))
    const second = createIdentity('second')
    saveIdentity(home, second, { force: true })
    assert.equal(loadIdentity(home).amid, second.amid)
    assert.equal(loadIdentity(home).name, 'second')
    assert.equal(statSync(join(home, IDENTITY_FILE)).mode & 0o777, 0o600)
  })

  it('identity - saving where something unreadable sits at the path is AM_ERR_IDENTITY_EXISTS', () => {
    const home = newHome()
    mkdirSync(join(home, IDENTITY_FILE), { recursive: true }) // not readable as a file, but not absent either
    const err = thrown(() => saveIdentity(home, createIdentity()))
    assert.equal(err.code, ErrorCode.IdentityExists)
    assert.deepEqual(readdirSync(home), [IDENTITY_FILE])
    assert.ok(statSync(join(home, IDENTITY_FILE)).isDirectory())
  })

  it('identity - a failed write is AM_ERR_DATA_DIR and leaves no temporary file behind', () => {
    const home = newHome()
    mkdirSync(join(home, IDENTITY_FILE), { recursive: true })
    const err = thrown(() => saveIdentity(home, createIdentity(), { force: true }))
    assert.equal(err.code, ErrorCode.DataDir)
    assert.equal(err.message, `cannot write ${join(home, IDENTITY_FILE)}: EISDIR`)
    assert.deepEqual(readdirSync(home), [IDENTITY_FILE], 'the temporary file holding the secret key was left behind')
  })

  it('identity - loading from an empty or missing directory is AM_ERR_NO_IDENTITY', () => {
    const empty = newHome()
    mkdirSync(empty)
    for (const home of [empty, newHome()]) {
      const err = thrown(() => loadIdentity(home))
      assert.equal(err.code, ErrorCode.NoIdentity)
      assert.equal(err.message, `no identity in ${home}; run \`agentmesh init\` first`)
    }
  })

  it('identity - a damaged file is AM_ERR_IDENTITY_CORRUPT saying what is wrong', () => {
    const other = createIdentity('other')
    const me = createIdentity('me')
    const good = { v: 1, amid: me.amid, public_key: toB64u(me.publicKey), secret_key: toB64u(me.secretKey) }
    const cases: Array<[string, string]> = [
      ['{"v":1,"amid":', 'not valid JSON'],
      ['', 'not valid JSON'],
      ['null', 'no secret_key'],
      ['"text"', 'no secret_key'],
      ['[]', 'no secret_key'],
      [JSON.stringify({ ...good, secret_key: undefined }), 'no secret_key'],
      [JSON.stringify({ ...good, secret_key: 42 }), 'no secret_key'],
      [JSON.stringify({ ...good, secret_key: toB64u(me.secretKey.subarray(0, 31)) }), 'secret_key is not 32 bytes'],
      [JSON.stringify({ ...good, amid: other.amid }), 'amid does not match the key'],
      [JSON.stringify({ ...good, amid: undefined }), 'amid does not match the key'],
    ]
    for (const [text, why] of cases) {
      const home = newHome()
      mkdirSync(home)
      const path = join(home, IDENTITY_FILE)
      writeFileSync(path, text)
      const err = thrown(() => loadIdentity(home))
      assert.equal(err.code, ErrorCode.IdentityCorrupt, text)
      assert.equal(err.message,
        `identity file ${path} is damaged (${why}); restore it from a backup or run \`agentmesh init --force\``, text)
    }
  })

  it('identity - an identity path that cannot be read is AM_ERR_DATA_DIR', () => {
    const home = newHome()
    mkdirSync(join(home, IDENTITY_FILE), { recursive: true }) // a directory where the file belongs
    const err = thrown(() => loadIdentity(home))
    assert.equal(err.code, ErrorCode.DataDir)
    assert.equal(err.message, `cannot read ${join(home, IDENTITY_FILE)}: EISDIR`)
  })

  it('identity - a home below a regular file is AM_ERR_DATA_DIR', () => {
    const file = join(root, `plain-${n++}`)
    writeFileSync(file, 'x')
    const err = thrown(() => saveIdentity(join(file, 'home'), createIdentity()))
    assert.equal(err.code, ErrorCode.DataDir)
    assert.match(err.message, /^cannot create the agent home .*: ENOTDIR$/)
  })

  it('identity - identityFromSecret derives the same AMID as the created identity', () => {
    const me = createIdentity('x')
    const again = identityFromSecret(me.secretKey, 'y')
    assert.equal(again.amid, me.amid)
    assert.equal(again.name, 'y')
  })

  it('identity - defaultHome is $AGENTMESH_HOME, else ~/.agentmesh', () => {
    assert.equal(defaultHome({ AGENTMESH_HOME: '/srv/agent' }), '/srv/agent')
    assert.equal(defaultHome({ AGENTMESH_HOME: 'rel/dir' }), resolve('rel/dir'))
    assert.equal(defaultHome({ AGENTMESH_HOME: '' }), join(homedir(), '.agentmesh'))
    assert.equal(defaultHome({}), join(homedir(), '.agentmesh'))
  })

  // STACK.md: Node 20 was seen to hang in key generation followed at once by a key export.
  // A hang shows up as this test's timeout, not as a timing assertion.
  it('identity - generating 300 identities in a loop finishes', { timeout: 60_000 }, () => {
    const amids = new Set<string>()
    for (let i = 0; i < 300; i++) {
      const id = createIdentity()
      assert.equal(id.secretKey.length, 32)
      assert.equal(isAmid(id.amid), true, id.amid)
      amids.add(id.amid)
    }
    assert.equal(amids.size, 300)
  })
})
