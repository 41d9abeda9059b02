/**
 * The NATS backplane over mutual TLS, against a real nats-server started here with a certificate
 * made for the test (`verify: true`: every client must present a certificate its CA signed): relays
 * with the right CA and client certificate talk; a client certificate from another CA, no client
 * certificate, a CA that does not know the server, and a plain connection are each refused with
 * AM_ERR_BACKPLANE_UNAVAILABLE.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect as tcpConnect } from 'node:net'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { BackplaneMessage } from '@agentmesh/server'
import { natsBackplane } from '@agentmesh/backplane-nats'
import { freePort, makeTestCa, type TestCa } from '@agentmesh/testing'

const NATS_BIN = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find(p => existsSync(p)) ?? 'nats-server'

async function listening (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => { s.end(); resolve(true) })
    s.on('error', () => { resolve(false) })
  })
}

describe('backplane-nats - mutual TLS', () => {
  let ca: TestCa
  let rogue: TestCa
  let server: ChildProcess
  let url: string
  const pem = (f: string): string => readFileSync(f, 'utf8')
  let good: { ca: string, cert: string, key: string }

  before(async () => {
    ca = makeTestCa('AgentMesh Test Bus CA')
    rogue = makeTestCa('Someone Else CA')
    const srv = ca.issue('nats-server')
    const client = ca.issue('relay-node', { client: true })
    good = { ca: pem(ca.caFile), cert: pem(client.certFile), key: pem(client.keyFile) }
    const port = await freePort()
    url = `nats://127.0.0.1:${port}`
    const conf = join(ca.dir, 'nats.conf')
    writeFileSync(conf, `listen: 127.0.0.1:${port}\ntls {\n  cert_file: "${srv.certFile}"\n  key_file: "${srv.keyFile}"\n  ca_file: "${ca.caFile}"\n  verify: true\n  timeout: 2\n}\n`)
    server = spawn(NATS_BIN, ['-c', conf], { stdio: 'ignore' })
    for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise(resolve => setTimeout(resolve, 50))
    assert.ok(await listening(port), 'nats-server with TLS to listen')
  })
  after(() => { server.kill() })

  const refused = async (tls: { ca?: string, cert?: string, key?: string } | undefined, why: string): Promise<void> => {
    const bp = natsBackplane({ servers: url, connectTimeoutMs: 3000, ...(tls === undefined ? {} : { tls }) })
    await assert.rejects(bp.start(), (err: unknown) => {
      assert.ok(AgentMeshError.is(err, ErrorCode.BackplaneUnavailable), `${why}: ${String(err)}`)
      assert.doesNotMatch((err as Error).message, /\n/)
      return true
    }, why)
    await bp.stop()
  }

  it('backplane-nats - two relays with the CA and their client certificates exchange messages over TLS', async () => {
    const a = natsBackplane({ servers: url, prefix: 'tls-test', tls: good })
    const b = natsBackplane({ servers: url, prefix: 'tls-test', tls: good })
    await a.start()
    await b.start()
    try {
      const got: BackplaneMessage[] = []
      b.subscribe((m) => { got.push(m) })
      const msg: BackplaneMessage = { type: 'presence', origin: 'node-a', amid: 'am-alice', status: 'online' }
      await a.publish(msg)
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
      assert.deepEqual(got, [msg])
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('backplane-nats - refused: a client certificate of another CA, none at all, a CA that does not know the server, and plain TCP', async () => {
    const stranger = rogue.issue('stranger', { client: true })
    await refused({ ca: good.ca, cert: pem(stranger.certFile), key: pem(stranger.keyFile) }, 'a client certificate the bus does not trust')
    await refused({ ca: good.ca }, 'no client certificate')
    await refused({ ca: pem(rogue.caFile), cert: good.cert, key: good.key }, 'a server certificate this relay does not trust')
    await refused(undefined, 'no TLS at all')
  })
})
