import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { checkedLookup, isPublicAddress, parseWebhookUrl } from '../src/wake/address.ts'

/** Which addresses a wake webhook may reach (docs/protocol.md §26). */
describe('wake - webhook addresses', () => {
  it('wake - only public unicast addresses are public, in v4, v6 and v4-mapped v6', () => {
    const pub = ['93.184.215.14', '8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']
    const priv = [
      '127.0.0.1', '127.8.9.1', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not an ip',
    ]
    for (const a of pub) assert.equal(isPublicAddress(a), true, a)
    for (const a of priv) assert.equal(isPublicAddress(a), false, a)
  })

  it('wake - the lookup a notice connects with refuses a name that resolves to a private address, unless allowed', async () => {
    const look = async (allow: boolean): Promise<unknown> => await new Promise((resolve, reject) => {
      checkedLookup(allow)('localhost', { all: true }, (err, addrs) => { if (err !== null) reject(err); else resolve(addrs) })
    })
    await assert.rejects(look(false), (e: unknown) => AgentMeshError.is(e, ErrorCode.WebhookAddressRefused) && /localhost/.test((e as Error).message))
    const ok = await look(true) as Array<{ address: string }>
    assert.ok(ok.length >= 1 && ok.every(a => !isPublicAddress(a.address)))
  })

  it('wake - URL forms are checked before any lookup', () => {
    const bad = (url: string, allow = false): void => {
      assert.throws(() => parseWebhookUrl(url, allow), (e: unknown) => AgentMeshError.is(e, ErrorCode.WebhookUrlInvalid))
    }
    bad('')
    bad('/relative')
    bad('javascript:alert(1)')
    bad('file:///etc/passwd', true)
    bad('http://example.com/hook')
    bad('https://u:p@example.com/')
    bad('https://' + 'a'.repeat(2100) + '.com/')
    assert.equal(parseWebhookUrl('http://127.0.0.1:8080/h', true).port, '8080')
    assert.equal(parseWebhookUrl('https://example.com/h?k=v', false).hostname, 'example.com')
  })
})
