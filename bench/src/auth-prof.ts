/**
 * Profiles the relay's authentication path alone: N new agents connect and authenticate, with
 * the server child under --cpu-prof; prints server CPU per auth and the profile's top functions.
 *   node --import tsx bench/src/auth-prof.ts [N=2000] [profDir]
 */
import { createIdentity } from '@agentmesh/crypto'
import { startNodeServer, tempDir, removeTempDir } from './children.ts'
import { authFeatures } from './fanout/room-receiver.ts'
import { authenticate } from './targets/agentmesh.ts'

const n = Number(process.argv[2] ?? 2000)
const profDir = process.argv[3]
const ids = Array.from({ length: n }, () => createIdentity())
const dataDir = tempDir('auth-prof')
const server = await startNodeServer({ kind: 'agentmesh', memory: false, dataDir }, profDir === undefined ? {} : { profileDir: profDir, profileName: 'auth' })
const extra = authFeatures()
const before = await server.cpu()
const t0 = performance.now()
const socks = []
for (let i = 0; i < n; i += 100) {
  socks.push(...await Promise.all(ids.slice(i, i + 100).map(async id => (await authenticate(server.url, id, () => {}, () => {}, extra, 60_000)).ws)))
}
const wall = performance.now() - t0
const after = await server.cpu()
const cpuUs = (after.userUs + after.systemUs) - (before.userUs + before.systemUs)
console.log(JSON.stringify({ n, wall_ms: Math.round(wall), auth_per_s: Math.round(n / wall * 1000), server_cpu_us_per_auth: Math.round(cpuUs / n), user_us: Math.round((after.userUs - before.userUs) / n), sys_us: Math.round((after.systemUs - before.systemUs) / n) }))
for (const s of socks) s.terminate()
await server.stop()
removeTempDir(dataDir)
