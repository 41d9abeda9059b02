/**
 * Where the CLI reads and writes: the process's streams, environment and signals by default; a
 * test (or an embedding program) gives its own, so that several runs share one process without
 * sharing any of them.
 */
import { createInterface } from 'node:readline/promises'
import { Writable } from 'node:stream'

/** What the CLI writes to: a stream, or anything that takes strings. */
export interface CliWritable {
  write (chunk: string): unknown
}

export interface CliIo {
  /** Results: text, or one JSON object per line with --json. */
  stdout: CliWritable
  /** Notes, warnings and the one error line. */
  stderr: CliWritable
  /** Read by `--stdin`, one message per line. */
  stdin: NodeJS.ReadableStream
  /** Read instead of process.env: AGENTMESH_HOME, AGENTMESH_SERVER, AGENTMESH_API_KEY, AGENTMESH_PASSPHRASE, AGENTMESH_NEW_PASSPHRASE. */
  env: Readonly<Record<string, string | undefined>>
  /**
   * Calls `handler` on Ctrl-C or SIGTERM (commands that run until stopped: listen, chat, task
   * wait, …); answers a function that removes it.
   */
  onInterrupt (handler: () => void): () => void
  /** Calls `handler` on SIGHUP (`serve` reads its TLS certificate again); answers a function that removes it. Absent: no hangups. */
  onHangup?: (handler: () => void) => () => void
  /** Help text width in columns when not writing to the process's stdout (80 by default, commander's own). */
  helpWidth?: number
  /**
   * Asks a person a yes/no question (`init --force`); absent when nobody can answer (stdin or
   * stderr not a terminal), and then a command that needs a yes refuses unless given `--yes`.
   */
  confirm?: (question: string) => Promise<boolean>
  /**
   * Reads a secret typed on the terminal without echoing it (`identity seal` asks for the
   * passphrase when AGENTMESH_PASSPHRASE is not set); absent without a terminal.
   */
  secret?: (prompt: string) => Promise<string>
}

/** The process's own streams, environment and SIGINT/SIGTERM; a terminal's yes/no when there is one. */
export function processIo (): CliIo {
  return {
    ...(process.stdin.isTTY && process.stderr.isTTY ? { confirm: askTerminal, secret: askSecret } : {}),
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    onInterrupt (handler) {
      process.once('SIGINT', handler)
      process.once('SIGTERM', handler)
      return () => { process.off('SIGINT', handler); process.off('SIGTERM', handler) }
    },
    onHangup (handler) {
      process.on('SIGHUP', handler)
      return () => { process.off('SIGHUP', handler) }
    },
  }
}

/** Reads a line from the terminal with echo off (the prompt on stderr). */
async function askSecret (prompt: string): Promise<string> {
  process.stderr.write(prompt)
  const muted = new Writable({ write (_chunk, _enc, done) { done() } })
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true })
  try {
    return await rl.question('')
  } finally {
    rl.close()
    process.stderr.write('\n')
  }
}

/** Asks on the terminal (the question on stderr, stdout stays for results); only y or yes is a yes. */
async function askTerminal (question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    return /^\s*y(es)?\s*$/i.test(await rl.question(`${question} [y/N] `))
  } finally {
    rl.close()
  }
}
