/**
 * A relay served over TLS (`--tls-cert`/`--tls-key`, server/src/tls.ts) and clients that trust its
 * private CA (`caFile` / AGENTMESH_CA_FILE, client/src/relay-tls.ts): wss:// and https:// on one
 * port, HSTS, a client that does not trust the CA refused, a reload that keeps open connections,
 * and certificates refused at start with one line.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { Agent } from 'undici'
import { createIdentity } from '@agentmesh/crypto'
import { AgentMeshError } from '@agentmesh/protocol'
import { connect, memoryState, type Connection } from '@agentmesh/client'
import { loadTls, relayOptions } from '@agentmesh/server'
import { makeTestCa, startRelay, takeMessages, type TestCa } from '@agentmesh/testing'

let ca: TestCa
before(() => { ca = makeTestCa() })

/** The subject CN of the certificate a new TLS connection to `port` is shown. */
async function servedCn (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(ca.caFile), servername: 'localhost' }, () => {
      const cn = s.getPeerCertificate().subject.CN
      s.end()
      resolve(Array.isArray(cn) ? cn.join(',') : cn)
    })
    s.on('error', reject)
  })
}

describe('tls - a relay on wss:// with a private CA', () => {
  const conns: Connection[] = []
  after(async () => { for (const c of conns) await c.close() })

  it('tls - agents that trust the CA talk over wss:// (WebSocket and REST), HSTS is on, a client without the CA is refused, and a reload keeps open connections', async (t) => {
    const first = ca.issue('relay-one', { cn: 'relay-one' })
    // the relay reads these paths again on reload: copies the test can overwrite
    const certFile = `${ca.dir}/live.pem`
    const keyFile = `${ca.dir}/live.key`
    copyFileSync(first.certFile, certFile)
    copyFileSync(first.keyFile, keyFile)
    const relay = await startRelay({ tlsCert: certFile, tlsKey: keyFile, apiKey: 'tls-test-operator-key-0123456789' })
    t.after(async () => { await relay.close() })
    assert.match(relay.url, /^https:\/\/127\.0\.0\.1:\d+$/)
    assert.match(relay.wsUrl, /^wss:\/\/127\.0\.0\.1:\d+\/ws$/)

    // not trusted: the TLS handshake fails, for the WebSocket and for fetch
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(relay.wsUrl)
      ws.on('open', () => { ws.close(); resolve('opened') })
      ws.on('error', (err) => { resolve((err as NodeJS.ErrnoException).code ?? err.message) })
    })
    assert.equal(refused, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the relay certificate is signed by a CA this client does not know')
    await assert.rejects(fetch(`${relay.url}/healthz`), /fetch failed/)

    // trusted (the CA besides Node's roots): HSTS on an HTTPS answer
    const dispatcher = new Agent({ connect: { ca: readFileSync(ca.caFile) } })
    const health = await fetch(`${relay.url}/healthz`, { dispatcher } as RequestInit)
    assert.equal(health.status, 200)
    assert.equal(health.headers.get('strict-transport-security'), 'max-age=31536000')

    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const a = await connect({ server: relay.wsUrl, identity: alice, state: memoryState(), caFile: ca.caFile })
    const b = await connect({ server: relay.url, identity: bob, state: memoryState(), caFile: ca.caFile })
    conns.push(a, b)
    await a.send(bob.amid, { text: 'over wss' })
    const [m1] = await takeMessages(b, 1)
    assert.deepEqual(m1!.payload, { text: 'over wss' })
    // a REST call through the SDK (the registry) goes over https:// with the same CA
    const rooms = await b.request('GET', '/api/v1/rooms') as { rooms: Array<{ id: string }> }
    assert.ok(rooms.rooms.some(r => r.id === 'global'), 'the global room, read over https://')

    // a new certificate: new connections get it, the open ones stay up and keep working
    assert.equal(await servedCn(relay.port), 'relay-one')
    const second = ca.issue('relay-two', { cn: 'relay-two' })
    copyFileSync(second.certFile, certFile)
    copyFileSync(second.keyFile, keyFile)
    const r = relay.reloadTls()
    assert.match(r.subject, /CN=relay-two/)
    assert.equal(await servedCn(relay.port), 'relay-two')
    await a.send(bob.amid, { text: 'after the reload' })
    const [m2] = await takeMessages(b, 1)
    assert.deepEqual(m2!.payload, { text: 'after the reload' })
    assert.equal(a.link().state, 'connected')

    // a reload with a key that does not match keeps the old pair
    copyFileSync(first.keyFile, keyFile)
    assert.throws(() => relay.reloadTls(), (err: unknown) => AgentMeshError.is(err) && err.code === 'AM_ERR_INVALID_CONFIG' && /does not match the certificate/.test(err.message))
    assert.equal(await servedCn(relay.port), 'relay-two')
  })
})

describe('tls - certificates and options refused with one line', () => {
  it('tls - a missing file, a file that is not PEM, a key of another certificate, an expired or not yet valid certificate', () => {
    const one = ca.issue('check-one')
    const two = ca.issue('check-two')
    const code = (fn: () => unknown, re: RegExp): void => {
      assert.throws(fn, (err: unknown) => AgentMeshError.is(err) && err.code === 'AM_ERR_INVALID_CONFIG' && re.test(err.message) && !err.message.includes('\n'))
    }
    assert.equal(loadTls(one.certFile, one.keyFile).subject, 'CN=check-one')
    code(() => loadTls(`${ca.dir}/nope.pem`, one.keyFile), /certificate file .*nope\.pem does not exist/)
    code(() => loadTls(one.certFile, `${ca.dir}/nope.key`), /key file .*nope\.key does not exist/)
    code(() => loadTls(one.keyFile, one.keyFile), /is not a PEM certificate/)
    code(() => loadTls(one.certFile, one.certFile), /is not an unencrypted PEM private key/)
    code(() => loadTls(one.certFile, two.keyFile), /does not match the certificate/)
    code(() => loadTls(one.certFile, one.keyFile, Date.now() + 5 * 86_400_000), /expired on .*; renew it/)
    code(() => loadTls(one.certFile, one.keyFile, Date.now() - 86_400_000), /is not valid before/)
  })

  it('tls - a certificate without a key, and plain ws:// on a non-loopback address unless --insecure', () => {
    assert.throws(() => relayOptions({ tlsCert: '/x.pem' }), /relay option tlsCert is given without tlsKey/)
    assert.throws(() => relayOptions({ tlsKey: '/x.key' }), /relay option tlsKey is given without tlsCert/)
    assert.throws(() => relayOptions({ host: '0.0.0.0' }), /host is 0\.0\.0\.0, not loopback.*--tls-cert and --tls-key, or --insecure/)
    assert.equal(relayOptions({ host: '0.0.0.0', insecure: true }).host, '0.0.0.0')
    assert.equal(relayOptions({ host: '0.0.0.0', tlsCert: '/x.pem', tlsKey: '/x.key' }).tlsCert, '/x.pem')
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.equal(relayOptions({ host }).host, host)
  })
})
