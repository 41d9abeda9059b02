import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ErrorCode } from '@agentmesh/protocol'

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
