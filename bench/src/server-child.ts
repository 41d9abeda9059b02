/**
 * Entry of a server child process (forked by children.ts with the parent's --import tsx).
 * argv[2] is a ChildSpec. Talks to the parent over IPC:
 *   → { t: 'ready', port, url } once listening
 *   ← { t: 'cpu', id }   → { t: 'cpu', id, user, system, stats } (process.cpuUsage(): all threads)
 *   ← { t: 'mem', id }   → { t: 'mem', id, mem } (process.memoryUsage() after two full GCs, --expose-gc)
 *   ← { t: 'stop' }      → closes the server and exits 0 (which writes a --cpu-prof profile)
 * It exits when the parent goes away.
 */
import type { ChildSpec } from './children.ts'

interface Served { port: number, url: string, close: () => Promise<void>, stats?: () => Record<string, number> }

const send = (m: unknown): void => { if (process.connected) process.send!(m) }

async function start (spec: ChildSpec): Promise<Served> {
  switch (spec.kind) {
    case 'agentmesh': {
      const { serveAgentMesh } = await import('./targets/agentmesh.ts')
      return serveAgentMesh(spec)
    }
    case 'bare': {
      const { serveBare } = await import('./targets/bare.ts')
      return serveBare()
    }
    case 'socketio': {
      const { serveSocketIo } = await import('./targets/socketio.ts')
      return serveSocketIo()
    }
  }
}

let served: Served | undefined
let stopping = false

async function stop (code: number): Promise<void> {
  if (stopping) return
  stopping = true
  const t = setTimeout(() => { process.exit(code) }, 5000)
  t.unref()
  try { await served?.close() } catch {}
  process.exit(code)
}

process.on('disconnect', () => { void stop(0) })
process.on('SIGINT', () => { void stop(130) })
process.on('SIGTERM', () => { void stop(143) })
process.on('message', (m: { t: string, id?: number }) => {
  if (m.t === 'cpu') {
    const u = process.cpuUsage()
    send({ t: 'cpu', id: m.id, user: u.user, system: u.system, stats: served?.stats?.() })
  } else if (m.t === 'mem') {
    const g = (globalThis as { gc?: () => void }).gc
    if (g !== undefined) { g(); g() }
    const u = process.memoryUsage()
    send({ t: 'mem', id: m.id, mem: { rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers, gc: g !== undefined } })
  } else if (m.t === 'stop') {
    void stop(0)
  }
})

try {
  const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec
  served = await start(spec)
  send({ t: 'ready', port: served.port, url: served.url })
} catch (err) {
  stopping = true
  const message = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err)
  if (process.connected) process.send!({ t: 'error', message }, () => { process.exit(1) })
  else process.exit(1)
}
