/**
 * Where `agentmesh serve` takes the relay's options from: the config file, the environment and
 * flags (flags winning), all built from the relay's option schema. Run in process, no relay.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { Command } from 'commander'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { relayOptions } from '@agentmesh/server'
import { tempDir } from '@agentmesh/testing'
import { addRelayFlags, configFromEnv, readConfigFile, relayInitFrom } from '../src/commands/serve-config.ts'

const dir = tempDir()
after(() => { dir.cleanup() })

/** Parses serve's relay flags as the CLI does and merges them over `env` and the config file. */
function initFrom (args: string[], env: NodeJS.ProcessEnv = {}, config?: object): ReturnType<typeof relayInitFrom> {
  const cmd = new Command('serve').exitOverride()
  addRelayFlags(cmd, { memory: (c) => c.option('--config <file>') })
  cmd.parse(args, { from: 'user' })
  let path: string | undefined
  if (config !== undefined) {
    path = join(dir.path, `config-${Math.random().toString(36).slice(2)}.json`)
    writeFileSync(path, JSON.stringify(config))
  }
  return relayInitFrom(cmd.opts(), cmd, env, path)
}

function expectError (fn: () => unknown, code: ErrorCode, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AgentMeshError)
    assert.equal(err.code, code)
    assert.equal(err.message, message)
    return true
  })
}

describe('serve config', () => {
  it('serve config - flags, environment variables and the config file set options under their schema names', () => {
    const init = initFrom(['--host', '::1', '--port', '0', '--sync', 'full', '--no-verify-signatures', '--api-key', 'k'.repeat(20)],
      { AGENTMESH_MAX_INBOX: '9', AGENTMESH_MEMORY: '1', AGENTMESH_UNRELATED: 'x' },
      { maxEnvelopeBytes: 4096, reputation: { anonymousWeight: 1 } })
    assert.deepEqual(init, {
      host: '::1', port: 0, sync: 'full', verifySignatures: false, apiKey: 'k'.repeat(20), maxInbox: 9, memory: true,
      maxEnvelopeBytes: 4096, reputation: { anonymousWeight: 1 },
    })
  })

  it('serve config - the PostgreSQL pool: --store-pool-size, --store-statement-timeout in seconds, their environment variables and file keys', () => {
    assert.deepEqual(initFrom(['--store-pool-size', '4', '--store-statement-timeout', '12']), { storePoolSize: 4, storeStatementTimeoutMs: 12_000 })
    assert.deepEqual(initFrom([], { AGENTMESH_STORE_POOL_SIZE: '5', AGENTMESH_STORE_STATEMENT_TIMEOUT_MS: '2500' }), { storePoolSize: 5, storeStatementTimeoutMs: 2500 })
    assert.deepEqual(initFrom([], {}, { storePoolSize: 6, storeStatementTimeoutMs: 60_000 }), { storePoolSize: 6, storeStatementTimeoutMs: 60_000 })
    assert.throws(() => initFrom(['--store-pool-size', '1001']), /1000|1,000/)
  })

  it('serve config - OpenID Connect: issuer and client id by flag, env or file; the secret from the environment only; roles as JSON', () => {
    const env = { AGENTMESH_OIDC_CLIENT_SECRET: 's3cret', AGENTMESH_OIDC_ROLES: '{"subjects":{"alice":"warden"}}', AGENTMESH_PUBLIC_URL: 'https://relay.example' }
    const init = initFrom(['--oidc-issuer', 'http://127.0.0.1:9000', '--oidc-client-id', 'relay'], env)
    assert.deepEqual(init, { oidcIssuer: 'http://127.0.0.1:9000', oidcClientId: 'relay', oidcClientSecret: 's3cret', oidcRoles: '{"subjects":{"alice":"warden"}}', publicUrl: 'https://relay.example' })
    assert.deepEqual(relayOptions(init).oidcRoles, { subjects: { alice: 'warden' }, groups: {} })
    assert.deepEqual(initFrom([], {}, { oidcRoles: { groups: { ops: 'operator' } } }), { oidcRoles: { groups: { ops: 'operator' } } })
    assert.throws(() => initFrom(['--oidc-client-secret', 'x']), /unknown option/)
    assert.throws(() => initFrom([], {}, { oidcClientSecret: 'x' }), /unknown key "oidcClientSecret"/)
  })

  it('serve config - the circuit relay (§30.3): --p2p-listen, --p2p-announce, --p2p-max-reservations, their environment variables and file keys', () => {
    assert.deepEqual(initFrom(['--p2p-listen', '/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/tcp/4002/ws', '--p2p-announce', '/dns4/relay.example/tcp/4001', '--p2p-max-reservations', '64']),
      { p2pListen: '/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/tcp/4002/ws', p2pAnnounce: '/dns4/relay.example/tcp/4001', p2pMaxReservations: 64 })
    assert.deepEqual(initFrom([], { AGENTMESH_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0', AGENTMESH_P2P_CIRCUIT_DATA_BYTES: '65536', AGENTMESH_P2P_RESERVATION_TTL_MS: '60000' }),
      { p2pListen: '/ip4/127.0.0.1/tcp/0', p2pCircuitDataBytes: 65_536, p2pReservationTtlMs: 60_000 })
    assert.deepEqual(initFrom([], {}, { p2pCircuitDurationMs: 30_000, p2pMaxConnections: 100 }), { p2pCircuitDurationMs: 30_000, p2pMaxConnections: 100 })
    assert.throws(() => relayOptions({ p2pListen: 'tcp 4001' }), /relay option p2pListen must be one or more multiaddrs/)
  })

  it('serve config - flags win over the environment, which wins over the file', () => {
    assert.equal(initFrom([], { AGENTMESH_MAX_INBOX: '9' }, { maxInbox: 7 }).maxInbox, 9)
    assert.equal(initFrom(['--port', '5'], { AGENTMESH_PORT: '6' }, { port: 7 }).port, 5)
    assert.equal(initFrom([], {}, { port: 7 }).port, 7)
    assert.equal(initFrom([], { AGENTMESH_VERIFY_SIGNATURES: 'false' }).verifySignatures, false)
    assert.equal(initFrom([], {}).verifySignatures, undefined, 'a boolean flag not given sets nothing')
    assert.equal(initFrom(['--verify-signatures'], {}).verifySignatures, true, 'the check is opt-in')
    assert.equal(initFrom(['--verify-signatures'], { AGENTMESH_VERIFY_SIGNATURES: 'false' }).verifySignatures, true)
    assert.equal(initFrom(['--no-verify-signatures'], { AGENTMESH_VERIFY_SIGNATURES: '1' }).verifySignatures, false, 'the old flag still works')
  })

  it('serve config - day and second flags become the options\' milliseconds', () => {
    const init = initFrom(['--history-retention-days', '2', '--audit-retention-days', '3', '--presence-idle', '90', '--history-max-per-room', '50', '--audit-max-rows', '10'])
    assert.deepEqual(init, { historyRetentionMs: 2 * 86_400_000, auditRetentionMs: 3 * 86_400_000, presenceIdleMs: 90_000, historyMaxPerRoom: 50, auditMaxRows: 10 })
    expectError(() => initFrom(['--history-retention-days', '36501']), ErrorCode.InvalidArgument, '--history-retention-days must be between 1 and 36500, got 36501')
    expectError(() => initFrom(['--presence-idle', 'soon']), ErrorCode.InvalidArgument, '--presence-idle must be a whole number, got "soon"')
  })

  it('serve config - the more specific source picking memory or a data directory wins; both as flags are refused', () => {
    assert.deepEqual(initFrom(['--memory'], { AGENTMESH_DATA: '/srv/a' }, { dataDir: '/srv/b' }), { memory: true })
    assert.deepEqual(initFrom(['--data', '/srv/c'], { AGENTMESH_MEMORY: 'true' }), { dataDir: '/srv/c' })
    assert.deepEqual(initFrom([], { AGENTMESH_MEMORY: 'true' }, { dataDir: '/srv/b' }), { memory: true })
    assert.deepEqual(initFrom([], { AGENTMESH_DATA: '/srv/a' }, { memory: true }), { dataDir: '/srv/a' })
    expectError(() => initFrom(['--memory', '--data', '/srv/c']), ErrorCode.InvalidArgument, '--memory and --data are mutually exclusive')
    // what relayOptions makes of a file naming both: refused, naming the fields
    expectError(() => relayOptions(initFrom([], {}, { memory: true, dataDir: '/srv/b' })), ErrorCode.InvalidConfig, 'relay option memory and dataDir are mutually exclusive')
  })

  it('serve config - trust roots come from the flag\'s file, else the variable\'s', () => {
    const missing = join(dir.path, 'missing.pem')
    expectError(() => initFrom(['--trust-roots', missing], { AGENTMESH_TRUST_ROOTS: join(dir.path, 'other.pem') }), ErrorCode.InvalidConfig, `trust roots file ${missing} does not exist`)
    expectError(() => initFrom([], { AGENTMESH_TRUST_ROOTS: missing }), ErrorCode.InvalidConfig, `trust roots file ${missing} does not exist`)
    assert.equal(initFrom([], { AGENTMESH_TRUST_ROOTS: '' }).trustRoots, undefined)
  })

  it('serve config - environment values of the wrong kind are refused naming the variable', () => {
    expectError(() => configFromEnv({ AGENTMESH_MAX_IN_FLIGHT: 'lots' }), ErrorCode.InvalidConfig, 'AGENTMESH_MAX_IN_FLIGHT must be a whole number, got "lots"')
    expectError(() => configFromEnv({ AGENTMESH_PORT: '-1' }), ErrorCode.InvalidConfig, 'AGENTMESH_PORT must be a whole number, got "-1"')
    expectError(() => configFromEnv({ AGENTMESH_MEMORY: 'yes' }), ErrorCode.InvalidConfig, 'AGENTMESH_MEMORY must be true or false, got "yes"')
    assert.deepEqual(configFromEnv({ AGENTMESH_SYNC: 'sometimes', AGENTMESH_HOST: '', AGENTMESH_RETENTION_MS: ' 60000 ' }), { sync: 'sometimes', retentionMs: 60_000 })
    // PORT as container platforms set it; AGENTMESH_PORT wins over it
    assert.deepEqual(configFromEnv({ PORT: '8080' }), { port: 8080 })
    assert.deepEqual(configFromEnv({ PORT: '8080', AGENTMESH_PORT: '7000' }), { port: 7000 })
    expectError(() => configFromEnv({ PORT: 'http' }), ErrorCode.InvalidConfig, 'PORT must be a whole number, got "http"')
  })

  it('serve config - a config file with an unknown key, a value of the wrong JSON type or no object is refused', () => {
    const write = (name: string, text: string): string => { const p = join(dir.path, name); writeFileSync(p, text); return p }
    const unknown = write('unknown.json', '{"port": 0, "maxEnvelopBytes": 10}')
    assert.throws(() => readConfigFile(unknown), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidConfig) &&
      err.message.startsWith(`config file ${unknown}: unknown key "maxEnvelopBytes"; known keys: host, port, tlsCert, tlsKey, insecure, dataDir, memory, storeUrl, storePoolSize, storeStatementTimeoutMs, storeTlsCa, storeTlsCert, storeTlsKey, sync, backplane, backplaneTlsCa, backplaneTlsCert, backplaneTlsKey, backplaneCatchUpMs, clusterHeartbeatMs, clusterRateShareMs, clusterPeerTimeoutMs, maxEnvelopeBytes,`))
    const trust = write('trust.json', '{"trustRoots": []}')
    assert.throws(() => readConfigFile(trust), /unknown key "trustRoots"/, 'trust roots come from a PEM file, not the config file')
    const wrong = write('wrong.json', '{"port": "zero"}')
    expectError(() => readConfigFile(wrong), ErrorCode.InvalidConfig, `config file ${wrong}: "port" must be a number, got "zero"`)
    const rep = write('rep.json', '{"reputation": 5}')
    expectError(() => readConfigFile(rep), ErrorCode.InvalidConfig, `config file ${rep}: "reputation" must be an object, got 5`)
    const list = write('list.json', '[1]')
    expectError(() => readConfigFile(list), ErrorCode.InvalidConfig, `config file ${list} must hold a JSON object`)
    expectError(() => readConfigFile(join(dir.path, 'none.json')), ErrorCode.InvalidConfig, `cannot read config file ${join(dir.path, 'none.json')}: ENOENT`)
  })
})
