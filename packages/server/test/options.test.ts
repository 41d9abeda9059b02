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
import { createRelay, defaultOptions, relayOptionSpecs, relayOptions, silentLogger, storageOf, type RelayInit } from '@agentmesh/server'
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
      storeUrl: undefined,
      storePoolSize: 10,
      storeStatementTimeoutMs: 30_000,
      sync: 'normal',
      backplane: undefined,
      backplaneCatchUpMs: 30_000,
      clusterHeartbeatMs: 5000,
      clusterPeerTimeoutMs: 20_000,
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
      sendBufferBytes: 4 * 1024 * 1024,
      sendBufferMaxBytes: 32 * 1024 * 1024,
      errorBurst: 100,
      errorsPerMinute: 600,
      errorFloodClose: 1000,
      maxClockSkewMs: 10 * 60 * 1000,
      presenceIntervalMs: 1000,
      registryReadsPerMinute: 600,
      registryReadBurst: 200,
      verifySignatures: false,
      trustRoots: [],
      reputation: { anonymousWeight: 0.5, mutualDiscount: 0.8, flagDelta: 0.2, flagWindowMs: 86_400_000, maxFeedbackPerHour: 60 },
      apiKey: undefined,
      historyRetentionMs: 30 * 24 * 60 * 60 * 1000,
      historyMaxPerRoom: undefined,
      presenceIdleMs: undefined,
      auditRetentionMs: 90 * 24 * 60 * 60 * 1000,
      auditMaxRows: undefined,
      auditHeadEveryRows: 1000,
      auditHeadIntervalMs: 60_000,
      fileMaxBytes: 100 * 1024 * 1024,
      fileJsonMaxBytes: 10 * 1024 * 1024,
      fileQuotaBytes: 1024 * 1024 * 1024,
      fileMaxPerAgent: 10_000,
      updateGraceMs: 7 * 24 * 3_600_000,
      healthOfflineAfterMs: 90_000,
      healthHistory: 100,
      metricsToken: undefined,
      readOnly: false,
      backupIntervalMs: 86_400_000,
      backupKeep: 7,
      webhookAllowPrivate: false,
      webhookMinIntervalMs: 30_000,
      webhookRetries: 5,
      a2aTasksPerAgent: 16,
      a2aOpenRequests: 256,
      a2aStreamMs: 600_000,
      p2pListen: undefined,
      p2pAnnounce: undefined,
      p2pMaxReservations: 128,
      p2pReservationTtlMs: 3_600_000,
      p2pCircuitDurationMs: 120_000,
      p2pCircuitDataBytes: 1_048_576,
      p2pMaxConnections: 512,
      rateLimits: {},
      tlsCert: undefined,
      tlsKey: undefined,
      storeTlsCa: undefined,
      storeTlsCert: undefined,
      storeTlsKey: undefined,
      backplaneTlsCa: undefined,
      backplaneTlsCert: undefined,
      backplaneTlsKey: undefined,
      insecure: false,
      clusterRateShareMs: 250,
      publicUrl: undefined,
      oidcIssuer: undefined,
      oidcClientId: undefined,
      oidcClientSecret: undefined,
      oidcRoles: { subjects: {}, groups: {} },
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

describe('options - the option schema', () => {
  it('options - every resolved option has one spec with a doc line; defaults come from the specs', () => {
    const specs = relayOptionSpecs()
    assert.deepEqual(specs.map(([k]) => k).sort(), Object.keys(defaultOptions()).sort())
    for (const [k, spec] of specs) {
      assert.ok(spec.doc.length > 10, `${k} has a doc line`)
      assert.deepEqual(defaultOptions()[k], spec.default, k)
    }
  })

  it('options - config-file keys, environment variables and flags are the documented ones, each used once', () => {
    const specs = relayOptionSpecs()
    assert.deepEqual(specs.filter(([, s]) => s.file).map(([k]) => k), [
      'host', 'port', 'tlsCert', 'tlsKey', 'insecure', 'dataDir', 'memory', 'storeUrl', 'storePoolSize', 'storeStatementTimeoutMs', 'storeTlsCa', 'storeTlsCert', 'storeTlsKey', 'sync', 'backplane', 'backplaneTlsCa', 'backplaneTlsCert', 'backplaneTlsKey', 'backplaneCatchUpMs', 'clusterHeartbeatMs', 'clusterRateShareMs', 'clusterPeerTimeoutMs', 'maxEnvelopeBytes', 'maxInFlight', 'deliveryWindow', 'maxConnectionsPerAgent',
      'maxConnections', 'heartbeatMs', 'authTimeoutMs', 'retransmitMs', 'retentionMs', 'maxInbox',
      'sendBufferBytes', 'sendBufferMaxBytes', 'errorBurst', 'errorsPerMinute', 'errorFloodClose', 'maxClockSkewMs', 'presenceIntervalMs',
      'registryReadsPerMinute', 'registryReadBurst', 'verifySignatures', 'reputation',
      'apiKey', 'historyRetentionMs', 'historyMaxPerRoom', 'presenceIdleMs', 'auditRetentionMs', 'auditMaxRows', 'auditHeadEveryRows', 'auditHeadIntervalMs',
      'publicUrl', 'oidcIssuer', 'oidcClientId', 'oidcRoles',
      'fileMaxBytes', 'fileJsonMaxBytes', 'fileQuotaBytes', 'fileMaxPerAgent', 'updateGraceMs',
      'healthOfflineAfterMs', 'healthHistory', 'metricsToken', 'readOnly', 'backupIntervalMs', 'backupKeep', 'webhookAllowPrivate', 'webhookMinIntervalMs', 'webhookRetries',
      'a2aTasksPerAgent', 'a2aOpenRequests', 'a2aStreamMs',
      'p2pListen', 'p2pAnnounce', 'p2pMaxReservations', 'p2pReservationTtlMs', 'p2pCircuitDurationMs', 'p2pCircuitDataBytes', 'p2pMaxConnections', 'rateLimits',
    ])
    const env = specs.flatMap(([k, s]) => s.env === undefined ? [] : [[k, s.env]])
    assert.deepEqual(Object.fromEntries(env), {
      host: 'AGENTMESH_HOST', port: 'AGENTMESH_PORT', tlsCert: 'AGENTMESH_TLS_CERT', tlsKey: 'AGENTMESH_TLS_KEY', insecure: 'AGENTMESH_INSECURE', dataDir: 'AGENTMESH_DATA', memory: 'AGENTMESH_MEMORY', storeUrl: 'AGENTMESH_STORE', storePoolSize: 'AGENTMESH_STORE_POOL_SIZE', storeStatementTimeoutMs: 'AGENTMESH_STORE_STATEMENT_TIMEOUT_MS', storeTlsCa: 'AGENTMESH_STORE_TLS_CA', storeTlsCert: 'AGENTMESH_STORE_TLS_CERT', storeTlsKey: 'AGENTMESH_STORE_TLS_KEY', sync: 'AGENTMESH_SYNC',
      maxEnvelopeBytes: 'AGENTMESH_MAX_ENVELOPE_BYTES', maxInFlight: 'AGENTMESH_MAX_IN_FLIGHT', deliveryWindow: 'AGENTMESH_DELIVERY_WINDOW',
      maxConnectionsPerAgent: 'AGENTMESH_MAX_CONNECTIONS_PER_AGENT', maxConnections: 'AGENTMESH_MAX_CONNECTIONS', heartbeatMs: 'AGENTMESH_HEARTBEAT_MS',
      authTimeoutMs: 'AGENTMESH_AUTH_TIMEOUT_MS', retransmitMs: 'AGENTMESH_RETRANSMIT_MS', retentionMs: 'AGENTMESH_RETENTION_MS', maxInbox: 'AGENTMESH_MAX_INBOX',
      sendBufferBytes: 'AGENTMESH_SEND_BUFFER_BYTES', sendBufferMaxBytes: 'AGENTMESH_SEND_BUFFER_MAX_BYTES', errorBurst: 'AGENTMESH_ERROR_BURST',
      errorsPerMinute: 'AGENTMESH_ERRORS_PER_MINUTE', errorFloodClose: 'AGENTMESH_ERROR_FLOOD_CLOSE', maxClockSkewMs: 'AGENTMESH_MAX_CLOCK_SKEW_MS',
      presenceIntervalMs: 'AGENTMESH_PRESENCE_INTERVAL_MS', registryReadsPerMinute: 'AGENTMESH_REGISTRY_READS_PER_MINUTE', registryReadBurst: 'AGENTMESH_REGISTRY_READ_BURST',
      verifySignatures: 'AGENTMESH_VERIFY_SIGNATURES', trustRoots: 'AGENTMESH_TRUST_ROOTS', apiKey: 'AGENTMESH_API_KEY',
      historyRetentionMs: 'AGENTMESH_HISTORY_RETENTION_MS', historyMaxPerRoom: 'AGENTMESH_HISTORY_MAX_PER_ROOM', presenceIdleMs: 'AGENTMESH_PRESENCE_IDLE_MS',
      auditRetentionMs: 'AGENTMESH_AUDIT_RETENTION_MS', auditMaxRows: 'AGENTMESH_AUDIT_MAX_ROWS',
      auditHeadEveryRows: 'AGENTMESH_AUDIT_HEAD_ROWS', auditHeadIntervalMs: 'AGENTMESH_AUDIT_HEAD_INTERVAL_MS',
      fileMaxBytes: 'AGENTMESH_FILE_MAX_BYTES', fileJsonMaxBytes: 'AGENTMESH_FILE_JSON_MAX_BYTES', fileQuotaBytes: 'AGENTMESH_FILE_QUOTA_BYTES', fileMaxPerAgent: 'AGENTMESH_FILE_MAX_PER_AGENT',
      publicUrl: 'AGENTMESH_PUBLIC_URL', oidcIssuer: 'AGENTMESH_OIDC_ISSUER', oidcClientId: 'AGENTMESH_OIDC_CLIENT_ID', oidcClientSecret: 'AGENTMESH_OIDC_CLIENT_SECRET', oidcRoles: 'AGENTMESH_OIDC_ROLES',
      updateGraceMs: 'AGENTMESH_UPDATE_GRACE_MS',
      healthOfflineAfterMs: 'AGENTMESH_HEALTH_OFFLINE_AFTER_MS', healthHistory: 'AGENTMESH_HEALTH_HISTORY', metricsToken: 'AGENTMESH_METRICS_TOKEN',
      readOnly: 'AGENTMESH_READ_ONLY', backupIntervalMs: 'AGENTMESH_BACKUP_INTERVAL_MS', backupKeep: 'AGENTMESH_BACKUP_KEEP',
      webhookAllowPrivate: 'AGENTMESH_WEBHOOK_ALLOW_PRIVATE', webhookMinIntervalMs: 'AGENTMESH_WEBHOOK_MIN_INTERVAL_MS', webhookRetries: 'AGENTMESH_WEBHOOK_RETRIES',
      a2aTasksPerAgent: 'AGENTMESH_A2A_TASKS_PER_AGENT', a2aOpenRequests: 'AGENTMESH_A2A_OPEN_REQUESTS', a2aStreamMs: 'AGENTMESH_A2A_STREAM_MS',
      p2pListen: 'AGENTMESH_P2P_LISTEN', p2pAnnounce: 'AGENTMESH_P2P_ANNOUNCE', p2pMaxReservations: 'AGENTMESH_P2P_MAX_RESERVATIONS', p2pReservationTtlMs: 'AGENTMESH_P2P_RESERVATION_TTL_MS',
      p2pCircuitDurationMs: 'AGENTMESH_P2P_CIRCUIT_DURATION_MS', p2pCircuitDataBytes: 'AGENTMESH_P2P_CIRCUIT_DATA_BYTES', p2pMaxConnections: 'AGENTMESH_P2P_MAX_CONNECTIONS',
      backplane: 'AGENTMESH_BACKPLANE', backplaneTlsCa: 'AGENTMESH_BACKPLANE_TLS_CA', backplaneTlsCert: 'AGENTMESH_BACKPLANE_TLS_CERT', backplaneTlsKey: 'AGENTMESH_BACKPLANE_TLS_KEY', backplaneCatchUpMs: 'AGENTMESH_BACKPLANE_CATCH_UP_MS', clusterHeartbeatMs: 'AGENTMESH_CLUSTER_HEARTBEAT_MS', clusterRateShareMs: 'AGENTMESH_CLUSTER_RATE_SHARE_MS', clusterPeerTimeoutMs: 'AGENTMESH_CLUSTER_PEER_TIMEOUT_MS',
    })
    const flags = specs.flatMap(([k, s]) => s.flag === undefined ? [] : [[k, s.flag.flags.split(' ')[0]]])
    assert.deepEqual(flags, [
      ['host', '--host'], ['port', '--port'], ['tlsCert', '--tls-cert'], ['tlsKey', '--tls-key'], ['insecure', '--insecure'], ['dataDir', '--data'], ['memory', '--memory'], ['storeUrl', '--store'], ['storePoolSize', '--store-pool-size'], ['storeStatementTimeoutMs', '--store-statement-timeout'], ['storeTlsCa', '--store-tls-ca'], ['storeTlsCert', '--store-tls-cert'], ['storeTlsKey', '--store-tls-key'], ['sync', '--sync'], ['backplane', '--backplane'], ['backplaneTlsCa', '--backplane-tls-ca'], ['backplaneTlsCert', '--backplane-tls-cert'], ['backplaneTlsKey', '--backplane-tls-key'],
      ['verifySignatures', '--verify-signatures'], ['trustRoots', '--trust-roots'], ['apiKey', '--api-key'],
      ['historyRetentionMs', '--history-retention-days'], ['historyMaxPerRoom', '--history-max-per-room'], ['presenceIdleMs', '--presence-idle'],
      ['auditRetentionMs', '--audit-retention-days'], ['auditMaxRows', '--audit-max-rows'],
      ['auditHeadEveryRows', '--audit-head-rows'], ['auditHeadIntervalMs', '--audit-head-interval'],
      ['publicUrl', '--public-url'], ['oidcIssuer', '--oidc-issuer'], ['oidcClientId', '--oidc-client-id'],
      ['fileMaxBytes', '--file-max-mib'], ['fileQuotaBytes', '--file-quota-mib'],
      ['updateGraceMs', '--update-grace'],
      ['healthOfflineAfterMs', '--health-offline-after'], ['metricsToken', '--metrics-token'],
      ['readOnly', '--read-only'], ['backupIntervalMs', '--backup-interval'], ['backupKeep', '--backup-keep'],
      ['webhookAllowPrivate', '--webhook-allow-private'],
      ['a2aStreamMs', '--a2a-stream-timeout'],
      ['p2pListen', '--p2p-listen'], ['p2pAnnounce', '--p2p-announce'], ['p2pMaxReservations', '--p2p-max-reservations'],
    ])
  })

  it('options - README\'s configuration table has a row for every option, with its environment variable and flag', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
    const rows = new Map<string, string>()
    for (const m of readme.matchAll(/^\| `(\w+)`[^|]*\|([^|]*)\|/gm)) rows.set(m[1]!, m[2]!)
    for (const [k, spec] of relayOptionSpecs()) {
      const row = rows.get(k)
      assert.ok(row !== undefined, `README lists ${k}`)
      if (spec.env !== undefined) assert.ok(row.includes(spec.env), `${k}: ${spec.env} in "${row}"`)
      if (spec.flag !== undefined) assert.ok(row.includes(spec.flag.flags.split(' ')[0]!), `${k}: ${spec.flag.flags} in "${row}"`)
    }
  })

  it('options - OpenID Connect: issuer and client id together, roles as JSON or an object, refused entries named', () => {
    const o = relayOptions({ oidcIssuer: 'http://127.0.0.1:9000', oidcClientId: 'relay', oidcRoles: '{"subjects":{"alice":"warden"},"groups":{"ops":"operator"}}' as never })
    assert.deepEqual(o.oidcRoles, { subjects: { alice: 'warden' }, groups: { ops: 'operator' } })
    assert.deepEqual(relayOptions({ oidcRoles: { subjects: { bob: 'operator' } } as never }).oidcRoles, { subjects: { bob: 'operator' }, groups: {} })
    expectInvalid({ oidcIssuer: 'http://127.0.0.1:9000' }, 'oidcIssuer', 'relay option oidcIssuer is given without oidcClientId (--oidc-client-id): OpenID Connect needs both')
    expectInvalid({ oidcIssuer: 'ftp://x', oidcClientId: 'r' }, 'oidcIssuer', 'relay option oidcIssuer must be an http:// or https:// URL (the provider\'s issuer)')
    expectInvalid({ oidcRoles: '{nope' as never }, 'oidcRoles', 'relay option oidcRoles must be JSON: {"subjects": {"<sub>": "operator"|"warden"}, "groups": {"<group>": "operator"|"warden"}}')
    expectInvalid({ oidcRoles: { subjects: { alice: 'master' } } as never }, 'oidcRoles.subjects.alice', 'relay option oidcRoles.subjects.alice must be "operator" or "warden", got "master"')
    expectInvalid({ oidcRoles: { users: {} } as never }, 'oidcRoles.users', 'relay option oidcRoles.users is not a field (subjects, groups)')
    expectInvalid({ publicUrl: 'relay.example' }, 'publicUrl', 'relay option publicUrl must be an http:// or https:// URL')
    // the secret is never a flag nor a config-file key
    const secret = relayOptionSpecs().find(([k]) => k === 'oidcClientSecret')![1]
    assert.equal(secret.flag, undefined)
    assert.equal(secret.file, false)
  })

  it('options - storageOf answers the one storage mode the options choose', () => {
    assert.deepEqual(storageOf(relayOptions()), { type: 'sqlite', dataDir: './data', sync: 'normal' })
    assert.deepEqual(storageOf(relayOptions({ dataDir: '/srv/am', sync: 'full' })), { type: 'sqlite', dataDir: '/srv/am', sync: 'full' })
    assert.deepEqual(storageOf(relayOptions({ memory: true })), { type: 'memory' })
    assert.deepEqual(storageOf(relayOptions({ storeUrl: 'postgres://am@db:5432/am', dataDir: '/srv/am' })), { type: 'postgres', url: 'postgres://am@db:5432/am', dataDir: '/srv/am' })
    expectInvalid({ storeUrl: 'mysql://db/am' }, 'storeUrl', 'relay option storeUrl must be a postgres:// (or postgresql://) URL')
    expectInvalid({ memory: true, storeUrl: 'postgres://db/am' }, 'memory', 'relay option memory and storeUrl are mutually exclusive')
  })

  it('options - presenceIdleMs below 1000 ms and other bounds are refused with the bound named', () => {
    expectInvalid({ presenceIdleMs: 999 }, 'presenceIdleMs', 'relay option presenceIdleMs must be at least 1000 (ms)')
    expectInvalid({ presenceIdleMs: 0 }, 'presenceIdleMs', 'relay option presenceIdleMs must be a positive integer, got 0')
    expectInvalid({ storePoolSize: 0 }, 'storePoolSize', 'relay option storePoolSize must be a positive integer, got 0')
    expectInvalid({ storePoolSize: 1001 }, 'storePoolSize', 'relay option storePoolSize must be at most 1000, got 1001')
    expectInvalid({ storeStatementTimeoutMs: 999 }, 'storeStatementTimeoutMs', 'relay option storeStatementTimeoutMs must be at least 1000 (ms)')
    expectInvalid({ storeStatementTimeoutMs: 3_600_001 }, 'storeStatementTimeoutMs', 'relay option storeStatementTimeoutMs must be at most 3600000, got 3600001')
    assert.deepEqual([relayOptions({ storePoolSize: 1000 }).storePoolSize, relayOptions({ storeStatementTimeoutMs: 1000 }).storeStatementTimeoutMs], [1000, 1000])
    expectInvalid({ historyMaxPerRoom: 0 }, 'historyMaxPerRoom', 'relay option historyMaxPerRoom must be a positive integer, got 0')
    expectInvalid({ apiKey: 'x'.repeat(257) }, 'apiKey', 'relay option apiKey must be 16–256 characters without spaces')
    expectInvalid({ apiKey: 'with a space in it, long' }, 'apiKey', 'relay option apiKey must be 16–256 characters without spaces')
    expectInvalid({ backplane: 'redis://127.0.0.1:6379' }, 'backplane', 'relay option backplane must be a NATS address, nats://host:port (several separated by commas for a NATS cluster)')
    assert.equal(relayOptions({ backplane: 'nats://a:4222,nats://b:4222' }).backplane, 'nats://a:4222,nats://b:4222')
    expectInvalid({ trustRoots: 'pem' }, 'trustRoots', 'relay option trustRoots must be a list of PEM texts, got string')
    expectInvalid({ rateLimits: { api: { perMinute: 0 } } }, 'rateLimits.api.perMinute', 'relay option rateLimits.api.perMinute must be a whole number from 1 to 1,000,000, got 0')
    expectInvalid({ rateLimits: { web: {} } }, 'rateLimits.web', 'relay option rateLimits.web is not a limit (api, ip, chat, chatIp)')
    expectInvalid({ sendBufferBytes: 1000, sendBufferMaxBytes: 999 }, 'sendBufferMaxBytes', 'relay option sendBufferMaxBytes must be at least sendBufferBytes (1000), got 999')
    assert.equal(relayOptions({ apiKey: 'k'.repeat(16) }).apiKey, 'k'.repeat(16))
    assert.equal(relayOptions({ presenceIdleMs: 1000 }).presenceIdleMs, 1000)
    assert.deepEqual(relayOptions({ rateLimits: { chatIp: { burst: 9 } } }).rateLimits, { chatIp: { burst: 9 } })
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
