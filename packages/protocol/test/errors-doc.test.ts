import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ErrorCode, ErrorRegistry } from '@agentmesh/protocol'

it('errors - docs/errors.md has a heading for exactly the codes of the registry', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
  const documented = [...doc.matchAll(/^### (AM_ERR_[A-Z_]+)\s*$/gm)].map(m => m[1]!)
  assert.equal(new Set(documented).size, documented.length, 'no code is documented twice')
  assert.deepEqual([...documented].sort(), Object.values(ErrorCode).sort())
})

it('errors - every code is AM_ERR_ followed by upper-case words, and unique', () => {
  const codes = Object.values(ErrorCode)
  assert.equal(new Set(codes).size, codes.length)
  for (const c of codes) assert.match(c, /^AM_ERR_[A-Z]+(_[A-Z]+)*$/)
})

it('errors - each code\'s section in docs/errors.md ends with its status, close code and retryable, as the registry says', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
  const sections = doc.split(/^### /m).slice(1)
  const documented: Record<string, string> = {}
  for (const s of sections) {
    const code = s.slice(0, s.indexOf('\n')).trim()
    const line = [...s.matchAll(/^Status: (\d+|—) · Close: (\d+|—) · Retryable: (yes|no)$/gm)]
    assert.equal(line.length, 1, `${code}: one Status line`)
    documented[code] = line[0]![0]
  }
  const expected: Record<string, string> = {}
  for (const code of Object.values(ErrorCode)) {
    const info = ErrorRegistry[code]
    expected[code] = `Status: ${info.status ?? '—'} · Close: ${info.close ?? '—'} · Retryable: ${info.retryable ? 'yes' : 'no'}`
  }
  assert.deepEqual(documented, expected)
})
