/**
 * The foundation's scenarios, driven as a user would: real relay processes, the real CLI binary,
 * SIGKILL of the relay and of the receiver (set-up steps and the offline receiver run in process).
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { cli, startRelay, freePort, cliProcess, spawnRelay, tempDir, waitFor, type RelayProcess } from '@agentmesh/testing'

const children: Array<ReturnType<typeof cliProcess>> = []
function track (c: ReturnType<typeof cliProcess>): ReturnType<typeof cliProcess> {
  children.push(c)
  return c
}

async function init (home: string, server: string, name: string): Promise<string> {
  const r = await cli(['init', '--open', '--name', name, '--json'], { home, server })
  assert.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.lines[0]!) as { amid: string, registered: boolean }
  assert.equal(j.registered, true)
  return j.amid
}

function lines (n: number, prefix: string): string {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`).join('\n') + '\n'
}

/**
 * Collects the JSON lines a listening CLI prints; `torn` holds a line that is not JSON (the last
 * one, cut off when the process is SIGKILLed while writing it).
 */
function collect (child: ReturnType<typeof cliProcess>): { child: ReturnType<typeof cliProcess>, texts: string[], ids: string[], torn: string[], stderr: () => string, done: Promise<number | null> } {
  const texts: string[] = []
  const ids: string[] = []
  const torn: string[] = []
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  createInterface({ input: child.stdout! }).on('line', (l) => {
    let m: { id: string, text: string }
    try { m = JSON.parse(l) as { id: string, text: string } } catch { torn.push(l); return }
    texts.push(m.text)
    ids.push(m.id)
  })
  const done = new Promise<number | null>((resolve) => { child.once('close', (c) => { resolve(c) }) })
  return { child, texts, ids, torn, stderr: () => err, done }
}

describe('scenarios', () => {
  const dir = tempDir()
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    dir.cleanup()
  })

  it('scenarios - an offline receiver gets 1,000 messages in order, once', async () => {
    const relay = await startRelay({ dataDir: `${dir.path}/offline-data` })
    try {
      const a = `${dir.path}/offline-a`
      const b = `${dir.path}/offline-b`
      await init(a, relay.url, 'alice')
      const bob = await init(b, relay.url, 'bob')
      const sent = await cli(['send', bob, '--stdin', '--json'], { home: a, server: relay.url, input: lines(1000, 'm') })
      assert.equal(sent.code, 0, sent.stderr)
      assert.equal(sent.lines.length, 1000)
      assert.ok(sent.lines.every(l => (JSON.parse(l) as { status: string }).status === 'stored'))

      const got = await cli(['listen', '--count', '1000', '--json', '--timeout', '60'], { home: b, server: relay.url })
      assert.equal(got.code, 0, got.stderr)
      const msgs = got.lines.map(l => JSON.parse(l) as { text: string, from: string, type: string, id: string, ts: number })
      assert.deepEqual(msgs.map(m => m.text), Array.from({ length: 1000 }, (_, i) => `m-${i}`))
      assert.deepEqual(msgs.map(m => m.id), sent.lines.map(l => (JSON.parse(l) as { id: string }).id))
      assert.ok(msgs.every(m => m.type === 'chat' && typeof m.ts === 'number' && m.from.startsWith('am')))

      // the next message bob gets is one sent after the thousand: nothing is delivered twice
      assert.equal((await cli(['send', bob, 'm-last'], { home: a, server: relay.url })).code, 0)
      const again = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: b, server: relay.url })
      assert.equal(again.code, 0, again.stderr)
      assert.deepEqual(again.lines.map(l => (JSON.parse(l) as { text: string }).text), ['m-last'], 'nothing is delivered twice')
    } finally {
      await relay.close()
    }
  })

  it('scenarios - the relay is SIGKILLed mid-stream and restarted: every message arrives exactly once and send --stdin exits 0', async () => {
    const port = await freePort()
    const data = `${dir.path}/kill-data`
    let relay: RelayProcess = await spawnRelay({ dataDir: data, port })
    const server = relay.url
    const a = `${dir.path}/kill-a`
    const b = `${dir.path}/kill-b`
    try {
      await init(a, server, 'alice')
      const bob = await init(b, server, 'bob')
      const total = 2000
      const listener = collect(track(cliProcess(['listen', '--count', String(total), '--json'], { home: b, server })))
      const sender = track(cliProcess(['send', bob, '--stdin', '--json'], { home: a, server }))
      let acked = 0
      let senderErr = ''
      sender.stderr!.on('data', (d: Buffer) => { senderErr += d.toString() })
      createInterface({ input: sender.stdout! }).on('line', () => { acked++ })
      const senderDone = new Promise<number | null>((resolve) => { sender.once('close', (c) => { resolve(c) }) })

      // feed the first part, kill the relay while the stream is flowing, feed the rest
      let next = 0
      const feed = (n: number): void => {
        const end = Math.min(total, next + n)
        let chunk = ''
        for (; next < end; next++) chunk += `k-${next}\n`
        sender.stdin!.write(chunk)
      }
      feed(700)
      await waitFor(() => acked >= 300, 'first acks', 60_000)
      feed(300)
      await relay.kill('SIGKILL')
      const ackedAtKill = acked
      assert.ok(ackedAtKill < total, 'the relay died mid-stream')
      feed(500)
      relay = await spawnRelay({ dataDir: data, port })
      feed(total)
      sender.stdin!.end()

      assert.equal(await senderDone, 0, senderErr)
      assert.equal(acked, total, 'send printed one id per line')
      assert.equal(await listener.done, 0, listener.stderr())
      assert.equal(listener.texts.length, total)
      assert.equal(new Set(listener.ids).size, total, 'no message twice')
      assert.deepEqual(listener.texts, Array.from({ length: total }, (_, i) => `k-${i}`), 'all of them, in order')
      assert.deepEqual(listener.torn, [], 'every line is JSON')
    } finally {
      await relay.kill()
    }
  })

  it('scenarios - the receiver is SIGKILLed mid-stream and restarted: nothing is lost', async () => {
    const relay = await spawnRelay({ dataDir: `${dir.path}/rkill-data` })
    try {
      const a = `${dir.path}/rkill-a`
      const b = `${dir.path}/rkill-b`
      await init(a, relay.url, 'alice')
      const bob = await init(b, relay.url, 'bob')
      const total = 1500
      const first = collect(track(cliProcess(['listen', '--json'], { home: b, server: relay.url })))
      // the sender (a process, as a user's pipe) gets the first 700 lines; the rest only once the
      // receiver was killed, so that the kill is mid-stream however fast both run
      const sender = track(cliProcess(['send', bob, '--stdin'], { home: a, server: relay.url }))
      let senderErr = ''
      sender.stderr!.on('data', (d: Buffer) => { senderErr += d.toString() })
      sender.stdout!.resume()
      const sent = new Promise<number | null>((resolve) => { sender.once('close', (c) => { resolve(c) }) })
      const input = lines(total, 'r')
      const cut = input.indexOf('r-700\n')
      sender.stdin!.write(input.slice(0, cut))
      await waitFor(() => first.texts.length >= 200, 'the receiver to be mid-stream')
      first.child.kill('SIGKILL')
      await first.done
      const seenBeforeKill = [...first.texts]
      assert.ok(seenBeforeKill.length < total, 'killed before the end')
      assert.ok(first.torn.length <= 1, `only the line being written when killed is cut: ${JSON.stringify(first.torn)}`)
      sender.stdin!.end(input.slice(cut))
      assert.equal(await sent, 0, senderErr)

      // restarted: it listens until the last message is in, then until a marker sent after it (any
      // extra copy the relay still had comes before it), and is stopped
      const second = collect(track(cliProcess(['listen', '--json'], { home: b, server: relay.url })))
      await waitFor(() => second.texts.includes(`r-${total - 1}`), 'the rest of the stream', 60_000)
      const marker = await cli(['send', bob, 'marker'], { home: a, server: relay.url })
      assert.equal(marker.code, 0, marker.stderr)
      await waitFor(() => second.texts.includes('marker'), 'the marker', 60_000)
      second.child.kill('SIGTERM')
      assert.equal(await second.done, 0, second.stderr())
      assert.equal(second.texts.at(-1), 'marker', 'the marker last, once')
      assert.deepEqual(second.torn, [], 'every line is JSON')
      const after = second.texts.slice(0, -1)
      const all = [...seenBeforeKill, ...after]
      const expected = Array.from({ length: total }, (_, i) => `r-${i}`)
      assert.deepEqual([...new Set(all)].sort(), [...expected].sort(), 'every message arrived')
      // at most the one message in hand at the moment of the kill is shown again
      assert.ok(all.length - total <= 1, `${all.length - total} repeated`)
      assert.deepEqual([...new Set(all)], expected, 'in order')
    } finally {
      await relay.kill()
    }
  })
})
