/**
 * Where the CLI reads and writes: the process's streams, environment and signals by default; a
 * test (or an embedding program) gives its own, so that several runs share one process without
 * sharing any of them.
 */

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
  /** Read instead of process.env: AGENTMESH_HOME, AGENTMESH_SERVER, AGENTMESH_API_KEY, AGENTMESH_PASSPHRASE. */
  env: Readonly<Record<string, string | undefined>>
  /**
   * Calls `handler` on Ctrl-C or SIGTERM (commands that run until stopped: listen, chat, task
   * wait, …); answers a function that removes it.
   */
  onInterrupt (handler: () => void): () => void
  /** Help text width in columns when not writing to the process's stdout (80 by default, commander's own). */
  helpWidth?: number
}

/** The process's own streams, environment and SIGINT/SIGTERM. */
export function processIo (): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    onInterrupt (handler) {
      process.once('SIGINT', handler)
      process.once('SIGTERM', handler)
      return () => { process.off('SIGINT', handler); process.off('SIGTERM', handler) }
    },
  }
}
