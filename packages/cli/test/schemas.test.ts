/**
 * Message schemas through the CLI (docs/protocol.md §25): `schemas declare/show`, `listen
 * --schema-mode`, `send --payload --validate`, and what the sender sees (`sent`). In process, one relay.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assertCliError, cli, startRelay, tempDir, waitFor } from '@agentmesh/testing'
import type { Relay } from '@agentmesh/server'

const ORDER = { 'order.create': { type: 'object', properties: { item: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, required: ['item', 'qty'] } }

describe('agentmesh schemas', () => {
  const dir = tempDir()
  let relay: Relay
  let server: string
  const homes = { alice: join(dir.path, 'alice'), bob: join(dir.path, 'bob') }
  const amids: Record<string, string> = {}
  before(async () => {
    relay = await startRelay()
    server = relay.url
    for (const [name, home] of Object.entries(homes)) {
      const r = await cli(['init', '--open', '--name', name, '--json'], { home, server })
      assert.equal(r.code, 0, r.stderr)
      amids[name] = (JSON.parse(r.lines[0]!) as { amid: string }).amid
    }
  })
  after(async () => {
    await relay.close()
    dir.cleanup()
  })

  it('schemas - declare from a file, show it; an invalid schema is refused with AM_ERR_INVALID_SCHEMA', async () => {
    const file = join(dir.path, 'schemas.json')
    writeFileSync(file, JSON.stringify(ORDER))
    const d = await cli(['schemas', 'declare', file, '--json'], { home: homes.bob, server })
    assert.equal(d.code, 0, d.stderr)
    assert.deepEqual(d.lines.map(l => (JSON.parse(l) as { type: string }).type), ['order.create'])
    const shown = await cli(['schemas', 'show', amids.bob!, '--json'], { home: homes.alice, server })
    assert.equal(shown.code, 0, shown.stderr)
    assert.deepEqual(JSON.parse(shown.lines[0]!), { amid: amids.bob, type: 'order.create', schema: ORDER['order.create'] })
    const bad = join(dir.path, 'bad.json')
    writeFileSync(bad, JSON.stringify([{ type: 'x', schema: { type: 'integer', minimum: 'one' } }]))
    assertCliError(await cli(['schemas', 'declare', bad], { home: homes.bob, server }), 'AM_ERR_INVALID_SCHEMA', 1)
    // the list held is intact
    const still = await cli(['schemas', 'show', '--json'], { home: homes.bob, server })
    assert.deepEqual(still.lines.map(l => (JSON.parse(l) as { type: string }).type), ['order.create'])
  })

  it('schemas - send --validate refuses a bad payload locally; listen --schema-mode strict refuses one sent anyway, and the sender sees the code', async () => {
    const refused = await cli(['send', amids.bob!, '--type', 'order.create', '--payload', '{"item":"tea","qty":"two"}', '--validate'], { home: homes.alice, server })
    assertCliError(refused, 'AM_ERR_SCHEMA_MISMATCH', 1)
    assert.match(refused.stderr, /\/qty must be integer/)
    const bad = await cli(['send', amids.bob!, '--type', 'order.create', '--payload', '{"item":"tea"}', '--json'], { home: homes.alice, server })
    assert.equal(bad.code, 0, bad.stderr)
    const badId = (JSON.parse(bad.lines[0]!) as { id: string }).id
    const good = await cli(['send', amids.bob!, '--type', 'order.create', '--payload', '{"item":"cake","qty":2}', '--validate', '--json'], { home: homes.alice, server })
    assert.equal(good.code, 0, good.stderr)
    const l = await cli(['listen', '--count', '1', '--timeout', '20', '--json', '--schema-mode', 'strict'], { home: homes.bob, server })
    assert.equal(l.code, 0, l.stderr)
    assert.deepEqual(l.lines.map(x => (JSON.parse(x) as { payload: unknown }).payload), [{ item: 'cake', qty: 2 }])
    assert.match(l.stderr, /AM_ERR_SCHEMA_MISMATCH/)
    await waitFor(async () => {
      const s = await cli(['sent', '--json'], { home: homes.alice, server })
      const e = s.lines.map(x => JSON.parse(x) as { id: string, status: string, code?: string }).find(x => x.id === badId)
      return e?.status === 'refused' && e.code === 'AM_ERR_SCHEMA_MISMATCH'
    }, 'the refusal at the sender')
  })

  it('schemas - listen in warn mode (the default) shows a bad payload with schema_error', async () => {
    const bad = await cli(['send', amids.bob!, '--type', 'order.create', '--payload', '{"item":"tea","qty":0}'], { home: homes.alice, server })
    assert.equal(bad.code, 0, bad.stderr)
    const l = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: homes.bob, server })
    assert.equal(l.code, 0, l.stderr)
    const m = JSON.parse(l.lines[0]!) as { payload: unknown, schema_error?: string }
    assert.deepEqual([m.payload, m.schema_error], [{ item: 'tea', qty: 0 }, '/qty must be >= 1'])
    const text = await cli(['send', amids.bob!, '--type', 'order.create', '--payload', '[1]'], { home: homes.alice, server })
    assertCliError(text, 'AM_ERR_INVALID_ARGUMENT', 2)
    assertCliError(await cli(['listen', '--count', '1', '--timeout', '1', '--schema-mode', 'loose'], { home: homes.bob, server }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assertCliError(await cli(['mcp', '--schema-mode', 'loose'], { home: homes.bob, server }), 'AM_ERR_INVALID_ARGUMENT', 2, /--schema-mode must be warn or strict/)
  })
})
