import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { CommanderError, type Command } from 'commander'
import { createRelay, defaultLogger, loadTls, readClientTls, relayOptions, storageOf, type RelayInit, type RelayOptions } from '@agentmesh/server'
import { storeInitOf } from '@agentmesh/server/internal'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { writeSecretFile } from '@agentmesh/crypto'
import { memoryStore, type Store } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'
import { postgresStore, type PostgresStoreInit } from '@agentmesh/store-postgres'
import type { AuditHeadLog, Backplane, Logger } from '@agentmesh/server'
import { AUDIT_HEADS_FILE, fileAuditHeads, readAuditHeads } from '../audit-heads-file.ts'
import { output, reportError } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { addRelayFlags, relayInitFrom } from './serve-config.ts'

export { readConfigFile } from './serve-config.ts'

/** `serve`'s exit code when its database is damaged (EX_DATAERR): a supervisor should not restart it (docs/operations.md). */
export const EXIT_DATA_CORRUPT = 65

/** The operator API key's file in a persistent relay's data directory (0600). */
export const API_KEY_FILE = 'api-key'

/**
 * What `serve` gives the relay: the Store (SQLite under the data directory, or memory) and the
 * operator key (given, or kept in the data directory: made at the first start, 0600; a memory
 * relay without one has no operator API). Options are validated before anything is opened.
 */
export function openRelayData (init: RelayInit, start: { acceptDataLoss?: boolean } = {}): { store: Store, apiKey: string | undefined, apiKeyFile: string | undefined, apiKeyCreated?: boolean, auditHeads?: AuditHeadLog & { path: string }, walLost?: number } {
  const opts = relayOptions(init)
  const storage = storageOf(opts)
  if (storage.type === 'memory') return { store: memoryStore(storeInitOf(opts)), apiKey: opts.apiKey, apiKeyFile: undefined }
  if (storage.type === 'postgres') throw new AgentMeshError(ErrorCode.InvalidConfig, 'a PostgreSQL store opens asynchronously: use openRelayDataAsync')
  // before SQLite opens the file: it would reset a -wal file it cannot read, and the evidence with it
  const walLost = damagedWal(join(storage.dataDir, DB_FILE), start.acceptDataLoss === true)
  const store = sqliteStore(join(storage.dataDir, DB_FILE), { ...storeInitOf(opts), synchronous: storage.sync, quickCheck: true })
  try {
    const auditHeads = fileAuditHeads(storage.dataDir)
    const lost = walLost === undefined ? {} : { walLost }
    if (opts.apiKey !== undefined) return { store, apiKey: opts.apiKey, apiKeyFile: undefined, auditHeads, ...lost }
    return { store, ...operatorKeyFile(storage.dataDir), auditHeads, ...lost }
  } catch (err) {
    void store.close()
    throw err
  }
}

/**
 * openRelayData, and for a PostgreSQL store (`--store postgres://…`) the database: connected and
 * migrated, or one line naming it (down, wrong credentials, a newer schema) with nothing changed.
 * The data directory keeps the operator key and the signed audit heads, as for SQLite.
 */
/** The PostgreSQL store's options from the relay's: the Store's own, the pool size and the statement timeout. */
export function postgresInitOf (opts: RelayOptions): PostgresStoreInit {
  const tls = readClientTls('the PostgreSQL store', { ca: opts.storeTlsCa, cert: opts.storeTlsCert, key: opts.storeTlsKey })
  return { ...storeInitOf(opts), maxConnections: opts.storePoolSize, statementTimeoutMs: opts.storeStatementTimeoutMs, ...(tls === undefined ? {} : { tls }) }
}

export async function openRelayDataAsync (init: RelayInit, start: { acceptDataLoss?: boolean } = {}): Promise<ReturnType<typeof openRelayData>> {
  const opts = relayOptions(init)
  const storage = storageOf(opts)
  if (storage.type !== 'postgres') return openRelayData(init, start)
  const store = await postgresStore(storage.url, postgresInitOf(opts))
  try {
    // what stays on this node: owner-only, made once the database answered (a refused start leaves nothing)
    mkdirSync(storage.dataDir, { recursive: true, mode: 0o700 })
    const auditHeads = fileAuditHeads(storage.dataDir)
    if (opts.apiKey !== undefined) return { store, apiKey: opts.apiKey, apiKeyFile: undefined, auditHeads }
    return { store, ...operatorKeyFile(storage.dataDir), auditHeads }
  } catch (err) {
    await store.close()
    throw err
  }
}

/** The first four bytes of a -wal file SQLite wrote (big- or little-endian checksums). */
const WAL_MAGIC = new Set([0x377f0682, 0x377f0683])

/**
 * A -wal file that is not empty but has no WAL header (zeroed or overwritten after a crash): the
 * transactions committed in it are lost. AM_ERR_DATA_LOSS, unless `accept`: then its size.
 */
function damagedWal (dbFile: string, accept: boolean): number | undefined {
  const wal = dbFile + '-wal'
  let head: Buffer
  let size: number
  try {
    size = statSync(wal).size
    if (size === 0) return undefined
    head = Buffer.alloc(4)
    const fd = openSync(wal, 'r')
    try { readSync(fd, head, 0, 4, 0) } finally { closeSync(fd) }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new AgentMeshError(ErrorCode.DataDir, `cannot read ${wal}: ${(err as Error).message}`, { cause: err })
  }
  if (WAL_MAGIC.has(head.readUInt32BE(0))) return undefined
  if (accept) return size
  throw new AgentMeshError(ErrorCode.DataLoss, `${wal} holds ${size} bytes but no WAL header (it was zeroed or overwritten after a crash): the transactions committed in it are lost. Restore ${dbFile} and its -wal file from a backup, or start with --accept-data-loss to run on what is left (audited)`)
}

/** The audit row `serve --accept-data-loss` writes when it starts on a database behind its signed head. */
export const DATA_LOSS_ACTION = 'audit.data_loss'

/**
 * The start check of a persistent relay (docs/protocol.md §17.8): the database must hold the row
 * of the newest signed audit head (`<data>/audit-heads.jsonl`) with the hash the relay signed. A
 * database behind it lost committed data (its -wal file deleted or zeroed after a crash, a restore
 * from an older copy): AM_ERR_DATA_LOSS naming what is missing, unless `acceptDataLoss`, which
 * audits `audit.data_loss` and answers what was accepted.
 */
export async function checkRelayData (store: Store, dataDir: string, acceptDataLoss: boolean): Promise<{ lost?: { headSeq: number, dbSeq: number, headAt: number } }> {
  const path = join(dataDir, AUDIT_HEADS_FILE)
  // the newest lines are enough: the file grows by at most one head a second
  const { heads } = readAuditHeads(path, undefined, 100)
  // the newest head is the last one appended (a head after an accepted loss has a lower seq)
  const head = heads[heads.length - 1]
  if (head === undefined || head.seq === 0) return {}
  const last = await store.lastAudit()
  const dbSeq = last?.seq ?? 0
  let problem: string | undefined
  if (dbSeq < head.seq) {
    problem = `the database ends at audit row ${dbSeq}, but the relay signed a head at row ${head.seq} on ${new Date(head.at).toISOString()}: rows ${dbSeq + 1}-${head.seq}, and the messages and changes committed with them, are missing`
  } else {
    const row = (await store.readAudit({ after: head.seq - 1, limit: 1 }))[0]
    if (row !== undefined && row.seq === head.seq && row.hash !== head.hash) {
      problem = `audit row ${head.seq} of the database is not the one the relay signed on ${new Date(head.at).toISOString()} (its hash differs): the database was replaced or rolled back and written again`
    }
  }
  if (problem === undefined) return {}
  if (!acceptDataLoss) {
    if (store.kind === 'postgres') {
      throw new AgentMeshError(ErrorCode.DataLoss, `${problem} (the database was restored from an older copy, or points at another one). Restore it from a newer backup, or start with --accept-data-loss to run on what is left (audited)`)
    }
    throw new AgentMeshError(ErrorCode.DataLoss, `${problem} (the -wal file was lost or zeroed after a crash, or the database was restored from an older copy). Restore ${join(dataDir, DB_FILE)} and its -wal file from a backup, or start with --accept-data-loss to run on what is left (audited)`)
  }
  const lost = { headSeq: head.seq, dbSeq, headAt: head.at }
  await store.appendAudit([{ at: Date.now(), actor: 'operator', action: DATA_LOSS_ACTION, detail: { head_seq: head.seq, head_hash: head.hash, head_at: head.at, db_seq: dbSeq } }])
  return { lost }
}

function operatorKeyFile (dataDir: string): { apiKey: string, apiKeyFile: string, apiKeyCreated?: boolean } {
  const file = join(dataDir, API_KEY_FILE)
  try {
    const key = readFileSync(file, 'utf8').trim()
    if (key.length >= 16) return { apiKey: key, apiKeyFile: file }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AgentMeshError(ErrorCode.DataDir, `cannot read the operator API key ${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  const key = randomBytes(24).toString('base64url')
  writeSecretFile(file, key + '\n')
  return { apiKey: key, apiKeyFile: file, apiKeyCreated: true }
}

interface ServeOpts {
  config?: string
  json?: boolean
  /** the relay's own flags, by commander attribute name (see serve-config.ts) */
  [flag: string]: unknown
}

/**
 * The backplane `serve --backplane nats://…` joins, started (loaded only then: a single relay does
 * not load the NATS client). A NATS that does not answer rejects with AM_ERR_BACKPLANE_UNAVAILABLE.
 */
export async function openBackplane (url: string, logger: Logger, files: { ca?: string, cert?: string, key?: string } = {}): Promise<Backplane> {
  const { natsBackplane } = await import('@agentmesh/backplane-nats')
  const tls = readClientTls('the NATS backplane', files)
  const bp = natsBackplane({
    servers: url,
    ...(tls === undefined ? {} : { tls }),
    onError: (err) => { logger.warn({ err }, 'backplane message dropped') },
    onStatus: (status) => {
      if (status === 'disconnect') logger.warn({ backplane: 'nats' }, 'the NATS backplane went away: deliveries to agents on other relays wait until it is back (nothing is lost)')
      else logger.info({ backplane: 'nats' }, 'the NATS backplane is back: catching up from the store')
    },
  })
  await bp.start()
  return bp
}

/**
 * Ends the command with `code` and prints nothing more: `run()` answers a CommanderError's exit
 * code as it is (the binary exits with it, as `process.exit(code)` did; in process the run ends).
 */
function exitNow (code: number): CommanderError {
  return new CommanderError(code, 'commander.executeSubCommandAsync', '')
}

export function serveCommand (program: Command, io: CliIo = processIo()): void {
  const serve = program.command('serve')
    .description('run a relay: WebSocket and HTTP on one port, SQLite under the data directory (or PostgreSQL with --store)')
  // the relay's flags come from its option schema (serve-config.ts); --config keeps its place after --memory
  addRelayFlags(serve, { memory: (c) => c.option('--config <file>', 'JSON config file (flags and environment override it; env AGENTMESH_CONFIG)') })
  serve
    .option('--json', 'print the listening address as JSON')
    .option('--accept-data-loss', 'start although the database is behind the newest signed audit head (committed data was lost: a deleted -wal file, an older copy); audited as audit.data_loss')
    .action(async (o: ServeOpts, cmd: Command) => {
      const out = output(o.json === true, io)
      const configPath = o.config ?? io.env.AGENTMESH_CONFIG
      const init = relayInitFrom(o, cmd, io.env, configPath)
      // the options and the TLS certificate are checked before the data directory or database is opened
      const checked = relayOptions(init)
      if (checked.tlsCert !== undefined && checked.tlsKey !== undefined) loadTls(checked.tlsCert, checked.tlsKey)
      readClientTls('the PostgreSQL store', { ca: checked.storeTlsCa, cert: checked.storeTlsCert, key: checked.storeTlsKey })
      readClientTls('the NATS backplane', { ca: checked.backplaneTlsCa, cert: checked.backplaneTlsCert, key: checked.backplaneTlsKey })
      // a second signal (or a shutdown that fails) ends the command at once, with exit 1
      let leave!: (code: number) => void
      const left = new Promise<never>((_resolve, reject) => { leave = (code) => { reject(exitNow(code)) } })
      left.catch(() => {}) // raced below; unobserved until the relay is up
      // the interrupt handler first: a SIGTERM that arrives while starting still stops cleanly
      let stopRequested: ((sig: string) => void) | undefined
      let pendingSignal: string | undefined
      // The process's interrupts pass the signal's name (Node's signal events do); another io's count
      // as SIGTERM. The handlers stay until the process ends (as they always did): a signal in the
      // moment between "relay stopped" and the exit must not kill the process with the default action.
      const releaseFirst = io.onInterrupt((sig?: unknown) => {
        releaseFirst()
        io.onInterrupt(() => { leave(1) })
        const name = typeof sig === 'string' ? sig : 'SIGTERM'
        if (stopRequested !== undefined) stopRequested(name)
        else pendingSignal = name
      })
      let data: ReturnType<typeof openRelayData>
      try {
        data = await openRelayDataAsync(init, { acceptDataLoss: o.acceptDataLoss === true })
      } catch (err) {
        // a damaged database is refused with its own exit code, so that a supervisor told so
        // (systemd RestartPreventExitStatus=65, docs/operations.md) does not restart into it again and again
        if (AgentMeshError.is(err) && err.code === ErrorCode.DataCorrupt) {
          // a PostgreSQL database (a newer schema): its backups are PostgreSQL's, not <data>/backups
          if (init.storeUrl !== undefined) { reportError(err, o.json === true, io); throw exitNow(EXIT_DATA_CORRUPT) }
          reportError(new AgentMeshError(ErrorCode.DataCorrupt, `${err.message}; or restore a backup (\`agentmesh restore FILE --data DIR\`, scheduled ones are in <data>/backups/; docs/operations.md)`), o.json === true, io)
          throw exitNow(EXIT_DATA_CORRUPT)
        }
        throw err
      }
      const { store, apiKey, apiKeyFile, apiKeyCreated, auditHeads, walLost } = data
      const { dataDir: _dataDir, memory: _memory, sync: _sync, storeUrl: _storeUrl, store: _store, backplane: backplaneUrl, storeTlsCa: _sca, storeTlsCert: _scert, storeTlsKey: _skey, backplaneTlsCa: _bca, backplaneTlsCert: _bcert, backplaneTlsKey: _bkey, ...relayInit } = init
      const logger = defaultLogger(io.env.AGENTMESH_LOG_LEVEL ?? 'info')
      // a shared Store is a cluster's: the key file is this node's own, so a key would work on one node only
      if (init.storeUrl !== undefined && apiKeyFile !== undefined) {
        logger.warn({ api_key_file: apiKeyFile }, 'a shared store (--store) without --api-key: the operator API key is this node\'s own file; give every relay of the cluster the same --api-key (AGENTMESH_API_KEY)')
      }
      // relays over one shared Store tell each other through NATS (the relay does not stop a backplane it is given: this does)
      let backplane: Backplane | undefined
      if (backplaneUrl !== undefined) {
        try {
          backplane = await openBackplane(backplaneUrl, logger, { ca: checked.backplaneTlsCa, cert: checked.backplaneTlsCert, key: checked.backplaneTlsKey })
        } catch (err) {
          await store.close()
          throw err
        }
      }
      const stopBackplane = async (): Promise<void> => { await backplane?.stop() }
      if (auditHeads !== undefined) {
        try {
          if (walLost !== undefined) {
            await store.appendAudit([{ at: Date.now(), actor: 'operator', action: DATA_LOSS_ACTION, detail: { wal_bytes: walLost } }])
            logger.warn({ wal_bytes: walLost }, 'started with --accept-data-loss: the -wal file had no WAL header (audited audit.data_loss)')
          }
          const { lost } = await checkRelayData(store, dirname(auditHeads.path), o.acceptDataLoss === true)
          if (lost !== undefined) {
            logger.warn({ head_seq: lost.headSeq, db_seq: lost.dbSeq }, 'started with --accept-data-loss: the database is behind the newest signed audit head (audited audit.data_loss)')
            out.note(`--accept-data-loss: audit rows ${lost.dbSeq + 1}-${lost.headSeq} (and what was committed with them) are gone; starting on what is left (audited audit.data_loss)`)
          }
        } catch (err) {
          await stopBackplane()
          await store.close()
          throw err
        }
      }
      const starting = createRelay({ ...relayInit, ...(apiKey === undefined ? {} : { apiKey }) }, { store, logger, ...(auditHeads === undefined ? {} : { auditHeads }), ...(backplane === undefined ? {} : { backplane }) })
      // left while starting: a relay that comes up after all is closed, not left listening
      left.catch(() => { starting.then(async (r) => { await r.close() }, () => {}) })
      const relay = await Promise.race([starting, left]).catch(async (err: unknown) => {
        // not started (a port in use, say), or left while starting: the backplane goes too
        await stopBackplane()
        throw err
      })
      await Promise.race([left, new Promise<void>((resolve) => {
        stopRequested = (sig) => {
          out.note(`${sig}: stopping (committing pending messages, closing connections)`)
          relay.close().then(stopBackplane).then(resolve, (err) => {
            io.stderr.write(`agentmesh: error ${ErrorCode.Internal}: shutdown failed: ${(err as Error).message}\n`)
            leave(1)
          })
        }
        // a key made just now is shown once, on the terminal's start lines (never in the JSON line or
        // the logs), so the first sign-in to the console needs no file; later starts name the file
        const operator = apiKeyFile !== undefined
          ? apiKeyCreated === true
            ? `operator API key: ${apiKey} (made now and kept in ${apiKeyFile}, mode 0600; shown this once: send it as X-API-Key)`
            : `operator API key: in ${apiKeyFile} (send it as X-API-Key)`
          : relay.operatorApi ? 'operator API key: as given' : 'operator API: off (no --api-key / AGENTMESH_API_KEY)'
        out.result(
          { event: 'listening', url: relay.url, ws_url: relay.wsUrl, port: relay.port, storage: relay.storage, pid: process.pid, relay_amid: relay.relayAmid, ...(apiKeyFile === undefined ? {} : { api_key_file: apiKeyFile }), operator_api: relay.operatorApi, dashboard_url: `${relay.url}/dashboard/`, ...(relay.options.oidcIssuer === undefined ? {} : { oidc_issuer: relay.options.oidcIssuer }) },
          `AgentMesh relay listening on ${relay.url} (WebSocket ${relay.wsUrl})\ndata: ${relay.storage}${relay.storage === 'memory' ? ' (nothing survives a restart)' : ''}\n${operator}` +
            // ---- dashboard: the relay's console (issue 16)
            (relay.operatorApi ? `\nconsole: ${relay.url}/dashboard/ (sign in with the operator API key)` : '') +
            // ---- verified owners and console sign-in with OpenID Connect (issue 21, §28)
            (relay.options.oidcIssuer === undefined ? '' : `\nOpenID Connect: ${relay.options.oidcIssuer} (owner links; console sign-in for oidcRoles)`),
        )
        // SIGHUP: the TLS certificate and key are read again (new connections get them; open ones stay)
        const offHangup = relay.options.tlsCert === undefined ? undefined : io.onHangup?.(() => {
          try {
            const r = relay.reloadTls()
            out.result({ event: 'tls_reloaded', subject: r.subject, not_after: r.notAfter.toISOString() }, `SIGHUP: TLS certificate reloaded (${r.subject}, valid until ${r.notAfter.toISOString()})`)
          } catch (err) {
            io.stderr.write(`agentmesh: error ${AgentMeshError.is(err) ? err.code : ErrorCode.Internal}: TLS certificate not reloaded, the previous one stays in use: ${(err as Error).message}\n`)
          }
        })
        left.catch(() => { offHangup?.() })
        if (pendingSignal !== undefined) stopRequested(pendingSignal)
      })])
      out.result({ event: 'stopped' }, 'relay stopped')
    })
}
