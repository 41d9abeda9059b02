import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, loadIdentity, saveIdentity, toB64u } from '@agentmesh/crypto'
import { tempDir } from '@agentmesh/testing'

describe('identity sealed under a passphrase', () => {
  it('identity - with a passphrase the file holds no secret key; it opens with the passphrase only', () => {
    const dir = tempDir()
    try {
      const id = createIdentity('alice')
      const home = join(dir.path, 'a')
      saveIdentity(home, id, { passphrase: 'correct horse battery staple' })
      const text = readFileSync(join(home, 'identity.json'), 'utf8')
      assert.equal(text.includes(toB64u(id.secretKey)), false, 'the secret key is not in the file')
      assert.equal(JSON.parse(text).secret_key, undefined)
      assert.equal(JSON.parse(text).amid, id.amid)
      assert.equal(statSync(join(home, 'identity.json')).mode & 0o777, 0o600)
      const back = loadIdentity(home, { passphrase: 'correct horse battery staple' })
      assert.equal(back.amid, id.amid)
      assert.deepEqual(Buffer.from(back.secretKey), Buffer.from(id.secretKey))
      assert.equal(back.name, 'alice')
      assert.throws(() => loadIdentity(home), (e: Error & { code?: string }) => e.code === ErrorCode.BadPassphrase && /AGENTMESH_PASSPHRASE/.test(e.message))
      assert.throws(() => loadIdentity(home, { passphrase: 'wrong' }), { code: ErrorCode.BadPassphrase })
      // without a passphrase, as before: the key in the file, any passphrase given is not needed
      const plainHome = join(dir.path, 'b')
      saveIdentity(plainHome, id)
      assert.equal(JSON.parse(readFileSync(join(plainHome, 'identity.json'), 'utf8')).secret_key, toB64u(id.secretKey))
      assert.equal(loadIdentity(plainHome, { passphrase: 'anything' }).amid, id.amid)
    } finally {
      dir.cleanup()
    }
  })
})
