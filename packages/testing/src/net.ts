import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

/** A TCP port on 127.0.0.1 that was free a moment ago (to restart a relay on the same port). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => { resolve(port) })
    })
  })
}

/** A TCP relay to a service on 127.0.0.1 that a test stops (every connection cut, new ones refused) and starts again on the same port: the service "goes away" without touching the real one. */
export interface TcpProxy {
  readonly port: number
  /** the most client connections that were open through it at once (a pool's size, seen from outside) */
  readonly peak: number
  stop (): Promise<void>
  start (): Promise<void>
}

export async function tcpProxy (target: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  let clients = 0
  let peak = 0
  const start = async (): Promise<void> => {
    if (server !== undefined) return
    const s = createServer((client) => {
      const up = connect(target, '127.0.0.1')
      peak = Math.max(peak, ++clients)
      client.on('close', () => { clients-- })
      for (const x of [client, up]) { sockets.add(x); x.on('close', () => sockets.delete(x)); x.on('error', () => {}) }
      client.pipe(up).pipe(client)
    })
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', () => { resolve() }) })
    port = (s.address() as AddressInfo).port
    server = s
  }
  const stop = async (): Promise<void> => {
    const s = server
    server = undefined
    for (const x of sockets) x.destroy()
    if (s !== undefined) await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  }
  await start()
  return { get port () { return port }, get peak () { return peak }, stop, start }
}
