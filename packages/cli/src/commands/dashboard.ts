/**
 * `agentmesh dashboard`: the owner's console (docs/protocol.md §22.6). Opens the agent's
 * connection from its home (outbox, cursor, sessions and sealed state persist, as with
 * `agentmesh listen`), serves the dashboard's web UI and the owner API on 127.0.0.1, and opens the
 * browser on a one-time sign-in link (or prints it with --no-open). Runs until Ctrl-C.
 */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import { connect, tasks, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { output, parseInteger } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { consoleHost, startOwnerConsole } from '../dashboard/server.ts'
import { DEFAULT_LOGIN_TOKEN_TTL_MS } from '../dashboard/security.ts'

/** The platform's "open this URL" command; undefined where there is none. */
function opener (url: string): { cmd: string, args: string[] } {
  if (process.platform === 'darwin') return { cmd: 'open', args: [url] }
  if (process.platform === 'win32') return { cmd: 'cmd', args: ['/c', 'start', '""', url] }
  return { cmd: 'xdg-open', args: [url] }
}

/** How long the opener may take before it counts as started (some run the browser in the foreground). */
const OPENER_WAIT_MS = 3000

/** Starts the default browser on `url`; resolves false when that failed (no opener, no display). */
async function openBrowser (url: string): Promise<boolean> {
  const { cmd, args } = opener(url)
  return await new Promise<boolean>((resolve) => {
    try {
      const child = spawn(cmd, args, { stdio: 'ignore', detached: true })
      const timer = setTimeout(() => { resolve(true) }, OPENER_WAIT_MS)
      timer.unref()
      child.once('error', () => { clearTimeout(timer); resolve(false) })
      child.once('exit', (code) => { clearTimeout(timer); resolve(code === 0) })
      child.unref()
    } catch {
      resolve(false)
    }
  })
}

export function dashboardCommand (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('dashboard')
    .description('the owner\'s console: this agent\'s conversations (decrypted here), held knocks, grants, safety log, tasks, files and health in the browser, served on 127.0.0.1 until Ctrl-C')
    .option('--port <n>', 'port to serve on (0: any free one)', '0')
    .option('--host <host>', 'address to serve on: 127.0.0.1 or localhost only', '127.0.0.1')
    .option('--no-open', 'print the sign-in address instead of opening the browser'))
    .action(async (o: CommonOpts & { port: string, host: string, open: boolean }) => {
      const out = output(o.json === true, io)
      const port = parseInteger('--port', o.port, 0, 65535)
      consoleHost(o.host) // refused before any connection
      const stop = new AbortController()
      const release = io.onInterrupt(() => { stop.abort() })
      let conn: Connection | undefined
      try {
        conn = await connect({
          server: serverOf(o, io.env),
          home: homeOf(o, io.env),
          ...passphraseOf(io.env),
          signal: stop.signal,
          onWarning: (w) => { out.warn(w) },
        })
        // a console keeps the agent answering /status and /ping, as `agentmesh listen` does
        const started = Date.now()
        const c = conn
        await tasks(c).onCommand('status', () => ({ amid: c.amid, status: 'online', uptime_s: Math.round((Date.now() - started) / 1000), pending_sends: c.pendingSends }), { description: 'this agent\'s status' }).catch(() => {})
        await tasks(c).onCommand('ping', (t) => t.args === '' ? 'pong' : `pong ${t.args}`, { description: 'answers pong' }).catch(() => {})
        const console = await startOwnerConsole({ conn, host: o.host, port })
        try {
          const login = console.loginUrl()
          const opened = o.open && await openBrowser(login)
          out.result({ url: login, console: console.url, amid: conn.amid, opened },
            opened ? `the owner's console is open in your browser (${console.url}); Ctrl-C stops it` : login)
          if (!opened) out.note(`open this address in a browser on this machine to sign in (it works once, for ${DEFAULT_LOGIN_TOKEN_TTL_MS / 60_000} minutes); Ctrl-C stops the console`)
          if (!stop.signal.aborted) await new Promise<void>((resolve) => { stop.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
        } finally {
          await console.close()
        }
      } catch (err) {
        if (!(AgentMeshError.is(err, ErrorCode.Aborted) && stop.signal.aborted)) throw err
      } finally {
        await conn?.close() // the outbox, cursor and sealed state are flushed with it
        release()
      }
    })
}
