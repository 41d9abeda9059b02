import { run } from './program.ts'

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0) // the reader went away (`agentmesh listen | head`)
})
const code = await run(process.argv.slice(2))
process.exitCode = code
// lingering handles (a reconnect timer, a closing socket) must not keep the process alive
setTimeout(() => { process.exit(code) }, 200).unref()
