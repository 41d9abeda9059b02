/**
 * run(argv, io): the CLI in process speaks only through the io it is given — its stdout, stderr,
 * stdin, environment and interrupt — so that runs in one process do not share any of them.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { run, type CliIo } from '@agentmesh/cli'
import { cli, startRelay, startCli, tempDir, waitFor } from '@agentmesh/testing'

/** An io whose output is collected; no interrupt ever comes. */
function collecting (env: Record<string, string | undefined>, input = ''): { io: CliIo, out: () => string, err: () => string } {
  let out = ''
  let err = ''
  return {
    io: {
      stdout: { write (s: string) { out += s } },
      stderr: { write (s: string) { err += s } },
      stdin: Readable.from(input === '' ? [] : [input]),
      env,
      onInterrupt: () => () => {},
    },
    out: () => out,
    err: () => err,
  }
}

describe('cli io', () => {
  const dir = tempDir()
  after(() => { dir.cleanup() })

  it('cli io - AGENTMESH_HOME comes from the io\'s environment, a --home flag wins over it', async () => {
    const [a, b] = [`${dir.path}/env-a`, `${dir.path}/env-b`]
    const amidA = (await cli(['init', '--offline', '--open'], { home: a })).lines[0]!
    const amidB = (await cli(['init', '--offline', '--open'], { home: b })).lines[0]!
    assert.notEqual(amidA, amidB)

    const byEnv = collecting({ AGENTMESH_HOME: a })
    assert.equal(await run(['whoami', '--json'], byEnv.io), 0, byEnv.err())
    assert.deepEqual(JSON.parse(byEnv.out()), { amid: amidA, home: a })

    const byFlag = collecting({ AGENTMESH_HOME: a })
    assert.equal(await run(['whoami', '--home', b], byFlag.io), 0, byFlag.err())
    assert.equal(byFlag.out(), `${amidB}\n`)
  })

  it('cli io - two runs at once keep their output apart; an error is one line on the io\'s stderr', async () => {
    const [a, b] = [`${dir.path}/two-a`, `${dir.path}/two-b`]
    const [ia, ib] = await Promise.all([cli(['init', '--offline', '--open'], { home: a }), cli(['init', '--offline', '--open'], { home: b })])
    const [wa, wb, missing] = await Promise.all([
      cli(['whoami'], { home: a }),
      cli(['whoami'], { home: b }),
      cli(['whoami'], { home: `${dir.path}/nobody` }),
    ])
    assert.deepEqual([wa.lines, wb.lines], [ia.lines, ib.lines])
    assert.deepEqual([wa.stderr, wb.stderr], ['', ''])
    assert.equal(missing.code, 1)
    assert.equal(missing.stdout, '')
    assert.match(missing.stderr, /^agentmesh: error AM_ERR_NO_IDENTITY: [^\n]+\n$/)
  })

  it('cli io - --stdin reads the io\'s stdin; an interrupted listen stops with 0 and prints what it received', async () => {
    const relay = await startRelay()
    try {
      const [a, b] = [`${dir.path}/in-a`, `${dir.path}/in-b`]
      await cli(['init', '--open'], { home: a, server: relay.url })
      const bob = (await cli(['init', '--open'], { home: b, server: relay.url })).lines[0]!
      const sent = await cli(['send', bob, '--stdin', '--json'], { home: a, server: relay.url, input: 'one\ntwo\n' })
      assert.equal(sent.code, 0, sent.stderr)
      assert.equal(sent.lines.length, 2)

      const listening = startCli(['listen', '--json'], { home: b, server: relay.url })
      await waitFor(() => listening.lines.length >= 2, 'the two messages')
      listening.interrupt()
      const r = await listening.done
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(r.lines.map(l => (JSON.parse(l) as { text: string }).text), ['one', 'two'])
    } finally {
      await relay.close()
    }
  })
})
