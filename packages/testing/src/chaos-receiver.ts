/**
 * A receiver process of the chaos run (chaos.ts): it speaks the raw protocol to the relay, prints
 * `d <id>` for each delivered envelope and only then moves its cursor, so a kill -9 between the two
 * makes the relay deliver it again (a duplicate the run counts), never lose it.
 * Environment: CHAOS_WS (ws://127.0.0.1:PORT/ws), CHAOS_SECRET (the identity's secret, base64url).
 */
import WebSocket from 'ws'
import { PROTOCOL } from '@agentmesh/protocol'
import { fromB64u, identityFromSecret, signChallenge } from '@agentmesh/crypto'

const url = process.env.CHAOS_WS ?? ''
if (!/^ws:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(url)) throw new Error('CHAOS_WS must be a ws://127.0.0.1 URL')
const id = identityFromSecret(fromB64u(process.env.CHAOS_SECRET ?? ''))

function connect (): void {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  ws.on('close', () => { setTimeout(connect, 200) })
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as Record<string, any>
    if (f.op === 'challenge') {
      ws.send(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: id.amid, nonce: f.nonce, sig: signChallenge(id, id.amid, f.nonce, f.relay) }))
    } else if (f.op === 'welcome') {
      process.stdout.write('ready\n')
    } else if (f.op === 'deliver') {
      // stdout to a pipe is synchronous on Linux (and waits out a full pipe, unlike writeSync's EAGAIN)
      process.stdout.write(`d ${String(f.env?.id)}\n`)
      ws.send(JSON.stringify({ op: 'cursor', seq: f.seq }))
    }
  })
}
connect()
