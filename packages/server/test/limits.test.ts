/** The per-IP rate-limit key (chat/limits.ts ipKey): IPv4 by address, IPv6 by its /64. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ipKey } from '../src/chat/limits.ts'

describe('ipKey', () => {
  it('ipKey - an IPv4 address is its own key', () => {
    assert.equal(ipKey('127.0.0.1'), '127.0.0.1')
    assert.equal(ipKey('203.0.113.7'), '203.0.113.7')
    assert.notEqual(ipKey('203.0.113.7'), ipKey('203.0.113.8'))
  })

  it('ipKey - an IPv4-mapped IPv6 address is keyed by its IPv4 address', () => {
    assert.equal(ipKey('::ffff:127.0.0.1'), '127.0.0.1')
    assert.equal(ipKey('::FFFF:203.0.113.7'), '203.0.113.7')
    assert.equal(ipKey('::ffff:7f00:1'), '127.0.0.1')
    assert.equal(ipKey('0:0:0:0:0:ffff:cb00:7107'), '203.0.113.7')
  })

  it('ipKey - a full and a compressed IPv6 address are keyed by their /64, normalised', () => {
    assert.equal(ipKey('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:0db8:0000:0000::/64')
    assert.equal(ipKey('2001:db8::1'), '2001:0db8:0000:0000::/64')
    assert.equal(ipKey('2001:DB8:a:b:c:d:e:f'), '2001:0db8:000a:000b::/64')
    assert.equal(ipKey('::1'), '0000:0000:0000:0000::/64')
    assert.equal(ipKey('fe80::1%eth0'), 'fe80:0000:0000:0000::/64')
  })

  it('ipKey - two addresses of one /64 share a key', () => {
    assert.equal(ipKey('2001:db8::1'), ipKey('2001:db8::2'))
    assert.equal(ipKey('2001:db8:1:2::1'), ipKey('2001:db8:1:2:ffff:ffff:ffff:ffff'))
  })

  it('ipKey - addresses of two /64s do not share a key', () => {
    assert.notEqual(ipKey('2001:db8:0:1::1'), ipKey('2001:db8:0:2::1'))
    assert.notEqual(ipKey('2001:db8::1'), ipKey('2001:db9::1'))
  })

  it('ipKey - what is not an IP address is its own key', () => {
    assert.equal(ipKey('local'), 'local')
    assert.equal(ipKey('?'), '?')
  })
})
