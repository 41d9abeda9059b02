/**
 * Relay options: merged over the defaults and validated before any I/O, naming the field; and the
 * two start-up failures that come from the machine rather than the options (port in use, a data
 * file that is not a database).
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { AgentMeshError, ErrorCode, constants } from '@agentmesh/protocol'
import { DB_FILE } from '@agentmesh/store-sqlite'
import { createRelay, defaultOptions, relayOptions, silentLogger, type RelayInit } from '@agentmesh/server'
import { startRelay, tempDir } from '@agentmesh/testing'

function expectInvalid (init: unknown, field: string, message: string | RegExp): void {
  assert.throws(() => relayOptions(init as RelayInit), (err: unknown) => {
    assert.ok(err instanceof AgentMeshError, `expected an AgentMeshError, got ${String(err)}`)
    assert.equal(err.name, 'AgentMeshError')
    assert.equal(err.code, ErrorCode.InvalidConfig)
    assert.ok(AgentMeshError.is(err, ErrorCode.InvalidConfig))
    assert.ok(err.message.startsWith(`relay option ${field} `), `"${err.message}" names ${field}`)
    if (typeof message === 'string') assert.equal(err.message, message)
    else assert.match(err.message, message)
    return true
  })
}

describe('options - relayOptions', () => {
  it('options - defaults come from the protocol constants', () => {
    const expected = {
      host: '127.0.0.1',
      port: 7777,
      dataDir: './data',
      memory: false,
      sync: 'normal',
      maxEnvelopeBytes: 1048576,
      maxInFlight: 1024,
      deliveryWindow: 1024,
      maxConnectionsPerAgent: 8,
      maxConnections: 10_000,
      heartbeatMs: 30_000,
      authTimeoutMs: 10_000,
      retransmitMs: 15_000,
      retentionMs: 30 * 24 * 60 * 60 * 1000,
      maxInbox: 100_000,
      verifySignatures: true,
      trustRoots: [],
      reputation: { anonymousWeight: 0.5, mutualDiscount: 0.8, flagDelta: 0.2, flagWindowMs: 86_400_000, maxFeedbackPerHour: 60 },
      apiKey: undefined,
      historyRetentionMs: 30 * 24 * 60 * 60 * 1000,
      historyMaxPerRoom: undefined,
      presenceIdleMs: undefined,
      auditRetentionMs: 90 * 24 * 60 * 60 * 1000,
      auditMaxRows: undefined,
      rateLimits: {},
    }
    assert.deepEqual(relayOptions(), expected)
    assert.deepEqual(relayOptions({}), expected)
    assert.deepEqual(defaultOptions(), expected)
    assert.equal(expected.maxEnvelopeBytes, constants.DEFAULT_MAX_ENVELOPE_BYTES)
    assert.equal(expected.port, constants.DEFAULT_PORT)
    assert.equal(expected.maxInbox, constants.DEFAULT_MAX_INBOX)
    // a fresh object each time: changing one does not change the defaults
    const o = relayOptions()
    o.port = 1
    assert.equal(relayOptions().port, 7777)
  })

  it('options - given values override the defaults, the rest stay', () => {
    const o = relayOptions({ port: 0, host: '::1', memory: true, maxInbox: 3, sync: 'full', verifySignatures: false, logger: silentLogger })
    assert.deepEqual(o, { ...defaultOptions(), port: 0, host: '::1', memory: true, maxInbox: 3, sync: 'full', verifySignatures: false })
    assert.equal('logger' in o, false)
    assert.equal(relayOptions({ port: 65535 }).port, 65535)
    assert.equal(relayOptions({ dataDir: '/tmp/x', memory: false }).dataDir, '/tmp/x')
  })

  it('options - negative, zero, fractional and non-numeric limits are refused naming the field', () => {
    expectInvalid({ maxInbox: -1 }, 'maxInbox', 'relay option maxInbox must be a positive integer, got -1')
    expectInvalid({ maxInFlight: 0 }, 'maxInFlight', 'relay option maxInFlight must be a positive integer, got 0')
    expectInvalid({ heartbeatMs: 1.5 }, 'heartbeatMs', 'relay option heartbeatMs must be a positive integer, got 1.5')
    expectInvalid({ maxEnvelopeBytes: '1024' }, 'maxEnvelopeBytes', 'relay option maxEnvelopeBytes must be a positive integer, got "1024"')
    expectInvalid({ deliveryWindow: Number.NaN }, 'deliveryWindow', 'relay option deliveryWindow must be a positive integer, got null')
    expectInvalid({ retentionMs: Infinity }, 'retentionMs', /^relay option retentionMs must be a positive integer/)
    expectInvalid({ authTimeoutMs: null }, 'authTimeoutMs', 'relay option authTimeoutMs must be a positive integer, got null')
    for (const field of ['maxEnvelopeBytes', 'maxInFlight', 'deliveryWindow', 'maxConnectionsPerAgent', 'maxConnections',
      'heartbeatMs', 'authTimeoutMs', 'retransmitMs', 'retentionMs', 'maxInbox', 'auditRetentionMs', 'auditMaxRows']) {
      expectInvalid({ [field]: -5 }, field, `relay option ${field} must be a positive integer, got -5`)
      expectInvalid({ [field]: 2.25 }, field, `relay option ${field} must be a positive integer, got 2.25`)
      expectInvalid({ [field]: '10' }, field, `relay option ${field} must be a positive integer, got "10"`)
    }
  })

  it('options - a bad port is refused naming port', () => {
    expectInvalid({ port: -1 }, 'port', 'relay option port must be a non-negative integer, got -1')
    expectInvalid({ port: 80.5 }, 'port', 'relay option port must be a non-negative integer, got 80.5')
    expectInvalid({ port: '7777' }, 'port', 'relay option port must be a non-negative integer, got "7777"')
    expectInvalid({ port: 70000 }, 'port', 'relay option port must be at most 65535, got 70000')
    expectInvalid({ port: 65536 }, 'port', 'relay option port must be at most 65535, got 65536')
  })

  it('options - memory with dataDir, an unknown sync mode and empty strings are refused', () => {
    expectInvalid({ memory: true, dataDir: './data' }, 'memory', 'relay option memory and dataDir are mutually exclusive')
    expectInvalid({ sync: 'fast' }, 'sync', 'relay option sync must be "normal" or "full", got "fast"')
    expectInvalid({ sync: 'FULL' }, 'sync', 'relay option sync must be "normal" or "full", got "FULL"')
    expectInvalid({ host: '' }, 'host', 'relay option host must be a non-empty string')
    expectInvalid({ host: 127 }, 'host', 'relay option host must be a non-empty string')
    expectInvalid({ dataDir: '' }, 'dataDir', 'relay option dataDir must be a non-empty path')
  })

  it('options - boolean options must be booleans', () => {
    // memory: "true" used to mean false (a database on disk), verifySignatures: "false" meant true
    expectInvalid({ memory: 'true' }, 'memory', 'relay option memory must be true or false, got "true"')
    expectInvalid({ memory: 1 }, 'memory', 'relay option memory must be true or false, got 1')
    expectInvalid({ verifySignatures: 'false' }, 'verifySignatures', 'relay option verifySignatures must be true or false, got "false"')
    expectInvalid({ verifySignatures: 0 }, 'verifySignatures', 'relay option verifySignatures must be true or false, got 0')
    assert.equal(relayOptions({ memory: false }).memory, false)
    assert.equal(relayOptions({ verifySignatures: true }).verifySignatures, true)
  })

  it('options - createRelay validates before any I/O', async () => {
    const dir = tempDir()
    try {
      const dataDir = join(dir.path, 'never-created')
      await assert.rejects(startRelay({ port: 0, dataDir, maxInbox: 0 }),
        (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidConfig) && /maxInbox/.test((err as Error).message))
      assert.equal(existsSync(dataDir), false, 'nothing was created for a refused configuration')
    } finally {
      dir.cleanup()
    }
  })
})

describe('options - start-up failures', () => {
  it('options - createRelay on a port in use rejects with AM_ERR_ADDRESS_IN_USE', async (t) => {
    const first = await createRelay({ port: 0, logger: silentLogger })
    t.after(async () => { await first.close() })
    await assert.rejects(createRelay({ port: first.port, logger: silentLogger }), (err: unknown) => {
      assert.ok(err instanceof AgentMeshError)
      assert.equal(err.code, ErrorCode.AddressInUse)
      assert.equal(err.message, `port ${first.port} on 127.0.0.1 is already in use; stop the other process or pass --port`)
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE')
      return true
    })
    // also when something else holds the port, and the first relay still serves
    const other = createServer()
    await new Promise<void>((resolve) => { other.listen(0, '127.0.0.1', resolve) })
    t.after(() => { other.close() })
    const port = (other.address() as { port: number }).port
    await assert.rejects(createRelay({ port, logger: silentLogger }), (err: unknown) => AgentMeshError.is(err, ErrorCode.AddressInUse))
    assert.equal((await fetch(first.url + '/healthz')).status, 200)
  })

  it('options - a failed start releases the data directory for the next one', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const first = await createRelay({ port: 0, logger: silentLogger })
    t.after(async () => { await first.close() })
    await assert.rejects(startRelay({ port: first.port, dataDir: dir.path }),
      (err: unknown) => AgentMeshError.is(err, ErrorCode.AddressInUse))
    // the SQLite file was opened exclusively, then closed on the failure: a relay can open it now
    const second = await startRelay({ port: 0, dataDir: dir.path })
    await second.close()
  })

  it('options - createRelay on a data file that is not a database rejects with AM_ERR_DATA_CORRUPT and leaves it unchanged', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    mkdirSync(dir.path, { recursive: true })
    const file = join(dir.path, DB_FILE)
    const garbage = Buffer.alloc(8192)
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251
    garbage.write('not a database, just bytes', 0)
    writeFileSync(file, garbage, { mode: 0o600 })
    const before = statSync(file)
    await assert.rejects(startRelay({ port: 0, dataDir: dir.path }), (err: unknown) => {
      assert.ok(err instanceof AgentMeshError)
      assert.equal(err.code, ErrorCode.DataCorrupt)
      assert.ok(err.message.startsWith(`${file} is not a usable AgentMesh database`), err.message)
      assert.match(err.message, /move it aside or point --data at another directory$/)
      return true
    })
    assert.deepEqual(readFileSync(file), garbage, 'the file is byte for byte what it was')
    const after = statSync(file)
    assert.equal(after.size, before.size)
    assert.equal(after.mode, before.mode)
    assert.deepEqual(readdirSync(dir.path), [DB_FILE], 'no journal or WAL file left beside it')
  })
})
