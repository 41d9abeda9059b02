import { createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that was free a moment ago (to restart a relay on the same port). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => { resolve(port) })
    })
  })
}
