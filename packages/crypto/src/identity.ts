/**
 * An agent's identity on disk: `$AGENTMESH_HOME/identity.json`, mode 0600 in a 0700
 * directory, written atomically (temporary file + rename).
 */
import { chmodSync, closeSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { randomBytes, scryptSync } from 'node:crypto'
import { amidFromPublicKey, fromB64u, generateKeyPair, keyPairFromSecret, toB64u, type KeyPair } from './keys.ts'
import { STATE_SCRYPT, openRecord, parseScryptParams, scryptParamsText, sealRecord } from './at-rest.ts'

export interface Identity extends KeyPair {
  readonly amid: string
  readonly name?: string
}

export const IDENTITY_FILE = 'identity.json'

/** `$AGENTMESH_HOME`, or `~/.agentmesh`. */
export function defaultHome (env: NodeJS.ProcessEnv = process.env): string {
  const h = env.AGENTMESH_HOME
  return h !== undefined && h !== '' ? resolve(h) : join(homedir(), '.agentmesh')
}

export function createIdentity (name?: string): Identity {
  const keys = generateKeyPair()
  return { ...keys, amid: amidFromPublicKey(keys.publicKey), ...(name === undefined ? {} : { name }) }
}

export function identityFromSecret (secretKey: Uint8Array, name?: string): Identity {
  const keys = keyPairFromSecret(secretKey)
  return { ...keys, amid: amidFromPublicKey(keys.publicKey), ...(name === undefined ? {} : { name }) }
}

/** Creates the home directory (0700) if needed. */
export function ensureHome (home: string): void {
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 })
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataDir,
      `cannot create the agent home ${home}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
}

/** Writes `data` to `path` atomically with mode 0600 (temporary file, fsync, rename, fsync of the directory). */
export function writeSecretFile (path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    try {
      writeSync(fd, data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    chmodSync(tmp, 0o600)
    renameSync(tmp, path)
    // the rename itself survives a crash once the directory is on disk (best effort: not every platform opens directories)
    try { const dfd = openSync(dirname(path), 'r'); try { fsyncSync(dfd) } finally { closeSync(dfd) } } catch {}
  } catch (err) {
    // the temporary file may hold a secret key: never leave it behind
    try { unlinkSync(tmp) } catch {}
    throw err
  }
}

/** The key that seals an identity's secret under a passphrase (scrypt, the state's parameters). */
function identityKey (passphrase: string, salt: Uint8Array, params = STATE_SCRYPT): Buffer {
  return scryptSync(passphrase.normalize('NFKC'), salt, 32, { ...params, maxmem: 256 * params.N * params.r * params.p })
}

/** The text of identity.json: the secret key in the clear, or sealed under `passphrase` when one is given. */
function identityBody (id: Identity, passphrase: string | undefined, createdAt: string): string {
  let secret: Record<string, string>
  if (passphrase !== undefined && passphrase !== '') {
    const salt = randomBytes(32)
    const key = identityKey(passphrase, salt)
    try {
      secret = { sealed_secret_key: toB64u(sealRecord(key, 'identity', id.amid, id.secretKey)), salt: toB64u(salt), scrypt: scryptParamsText(STATE_SCRYPT) }
    } finally {
      key.fill(0)
    }
  } else {
    secret = { secret_key: toB64u(id.secretKey) }
  }
  const body = {
    v: 1,
    amid: id.amid,
    ...(id.name === undefined ? {} : { name: id.name }),
    public_key: toB64u(id.publicKey),
    ...secret,
    created_at: createdAt,
  }
  return JSON.stringify(body, null, 2) + '\n'
}

/**
 * Saves a new identity; refuses to overwrite one unless `force`. With a passphrase, the secret key
 * is sealed under it (scrypt, then AES-256-GCM as the state's records are): the file alone no
 * longer opens the agent's state (docs/security.md).
 */
export function saveIdentity (home: string, id: Identity, opts: { force?: boolean, passphrase?: string } = {}): string {
  ensureHome(home)
  const path = join(home, IDENTITY_FILE)
  if (opts.force !== true) {
    // anything at the path counts, also a file this user cannot read: only ENOENT means "none"
    let exists = true
    try { lstatSync(path) } catch (cause) { if ((cause as NodeJS.ErrnoException).code === 'ENOENT') exists = false }
    if (exists) {
      throw new AgentMeshError(ErrorCode.IdentityExists,
        `an identity already exists at ${path}; use --force to replace it (the old AMID is lost)`)
    }
  }
  try {
    writeSecretFile(path, identityBody(id, opts.passphrase, new Date().toISOString()))
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataDir,
      `cannot write ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  return path
}

/**
 * Loads the identity from `home`, with a clear error for a missing or damaged file; one sealed
 * under a passphrase needs it (AM_ERR_BAD_PASSPHRASE without it, or with a wrong one).
 */
export function loadIdentity (home: string, opts: { passphrase?: string } = {}): Identity {
  const path = join(home, IDENTITY_FILE)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AgentMeshError(ErrorCode.NoIdentity, `no identity in ${home}; run \`agentmesh init\` first`, { cause })
    }
    throw new AgentMeshError(ErrorCode.DataDir, `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  const corrupt = (why: string): AgentMeshError =>
    new AgentMeshError(ErrorCode.IdentityCorrupt, `identity file ${path} is damaged (${why}); restore it from a backup or run \`agentmesh init --force\``)
  let body: { v?: unknown, amid?: unknown, name?: unknown, secret_key?: unknown, sealed_secret_key?: unknown, salt?: unknown, scrypt?: unknown }
  try { body = JSON.parse(text) } catch { throw corrupt('not valid JSON') }
  if (typeof body !== 'object' || body === null) throw corrupt('no secret_key')
  let secret: Uint8Array
  if (typeof body.sealed_secret_key === 'string') {
    if (typeof body.salt !== 'string' || typeof body.scrypt !== 'string' || typeof body.amid !== 'string') throw corrupt('a sealed key without its salt, parameters or AMID')
    if (opts.passphrase === undefined || opts.passphrase === '') {
      throw new AgentMeshError(ErrorCode.BadPassphrase, `the identity in ${path} is sealed with a passphrase and none was given; set AGENTMESH_PASSPHRASE`)
    }
    let params
    try { params = parseScryptParams(body.scrypt) } catch { throw corrupt('unreadable scrypt parameters') }
    const key = identityKey(opts.passphrase, fromB64u(body.salt), params)
    try {
      secret = openRecord(key, 'identity', body.amid, fromB64u(body.sealed_secret_key))
    } catch {
      throw new AgentMeshError(ErrorCode.BadPassphrase, `the passphrase does not open the identity in ${path}; set AGENTMESH_PASSPHRASE to the one it was sealed with`)
    } finally {
      key.fill(0)
    }
  } else if (typeof body.secret_key === 'string') {
    secret = fromB64u(body.secret_key)
  } else {
    throw corrupt('no secret_key')
  }
  if (secret.length !== 32) throw corrupt('secret_key is not 32 bytes')
  const id = identityFromSecret(secret, typeof body.name === 'string' ? body.name : undefined)
  if (body.amid !== id.amid) throw corrupt('amid does not match the key')
  return id
}

/** Whether `identity.json` in `home` holds its secret key sealed under a passphrase (without opening it). */
export function identityIsSealed (home: string): boolean {
  const path = join(home, IDENTITY_FILE)
  try {
    return typeof (JSON.parse(readFileSync(path, 'utf8')) as { sealed_secret_key?: unknown }).sealed_secret_key === 'string'
  } catch {
    return false // loadIdentity says what is wrong with it
  }
}

/**
 * Overwrites a file's bytes in place with random ones and syncs them, so the blocks that held a
 * clear secret key no longer do once it is replaced. Best effort: a copy-on-write file system, an
 * SSD's wear levelling, snapshots and backups keep old blocks out of an application's reach.
 */
function scrub (path: string): void {
  let fd: number
  try { fd = openSync(path, 'r+') } catch { return }
  try {
    const size = fstatSync(fd).size
    if (size > 0) writeSync(fd, randomBytes(size), 0, size, 0)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Seals the identity in `home` again: opened with `from` (its passphrase now, or none for a clear
 * file), written with `to` (a passphrase, or none to keep it in the clear), atomically, keeping its
 * name and creation date. A clear file being sealed is overwritten in place first (scrub). Throws
 * AM_ERR_BAD_PASSPHRASE when `from` does not open it.
 */
export function resealIdentity (home: string, opts: { from?: string, to?: string }): { identity: Identity, path: string, sealed: boolean } {
  const path = join(home, IDENTITY_FILE)
  const id = loadIdentity(home, opts.from === undefined ? {} : { passphrase: opts.from })
  const wasSealed = identityIsSealed(home)
  let createdAt: string | undefined
  try { createdAt = (JSON.parse(readFileSync(path, 'utf8')) as { created_at?: unknown }).created_at as string | undefined } catch {}
  const sealed = opts.to !== undefined && opts.to !== ''
  // written under a temporary name in the same directory, then over the old file: never half of each
  const body = identityBody(id, sealed ? opts.to : undefined, typeof createdAt === 'string' ? createdAt : new Date().toISOString())
  try {
    if (!wasSealed && sealed) scrub(path)
    writeSecretFile(path, body)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataDir, `cannot write ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  return { identity: id, path, sealed }
}
