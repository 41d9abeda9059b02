import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  compareScannable, createIdentity, deriveExchangeKey, fingerprintHalf, formatSafetyNumber, safetyNumber, scannableFingerprint, scannableSafetyNumber,
} from '@agentmesh/crypto'
import { ErrorCode } from '@agentmesh/protocol'

// libsignal's test vector (rust/protocol/src/fingerprint.rs, NumericFingerprintGeneratorTest):
// two curve25519 identity keys (0x05 ‖ key), phone numbers as stable identifiers, 5,200 iterations
const ALICE_IDENTITY = Buffer.from('0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868', 'hex')
const BOB_IDENTITY = Buffer.from('05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b', 'hex')
const ALICE_STABLE_ID = '+14152222222'
const BOB_STABLE_ID = '+14153333333'
const DISPLAYABLE_FINGERPRINT = '300354477692869396892869876765458257569162576843440918079131'

describe('safety numbers', () => {
  it('safety number - the hash and the 60 digits are libsignal\'s: its test vector', () => {
    const a = fingerprintHalf(ALICE_IDENTITY, ALICE_STABLE_ID)
    const b = fingerprintHalf(BOB_IDENTITY, BOB_STABLE_ID)
    assert.equal(a < b ? a + b : b + a, DISPLAYABLE_FINGERPRINT)
    // the scannable form (CombinedFingerprints v1): version 1, then the first 32 bytes of each side's hash
    const scan = scannableFingerprint({ publicKey: ALICE_IDENTITY, stableId: ALICE_STABLE_ID }, { publicKey: BOB_IDENTITY, stableId: BOB_STABLE_ID })
    assert.equal(scan.length, 74)
    assert.equal(scan.subarray(0, 38).toString('hex'), '080112220a20' + '1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df')
    assert.equal(scan.subarray(38, 42).toString('hex'), '1a220a20')
    const back = scannableFingerprint({ publicKey: BOB_IDENTITY, stableId: BOB_STABLE_ID }, { publicKey: ALICE_IDENTITY, stableId: ALICE_STABLE_ID })
    assert.deepEqual([back.subarray(6, 38), back.subarray(42)], [scan.subarray(42), scan.subarray(6, 38)], 'each side\'s halves, swapped')
  })

  it('safety number - two agents see the same number; each scans the other\'s form; a changed key shows', () => {
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const a = { amid: alice.amid, exchangeKey: deriveExchangeKey(alice).publicKey }
    const b = { amid: bob.amid, exchangeKey: deriveExchangeKey(bob).publicKey }
    assert.match(safetyNumber(a, b), /^\d{60}$/)
    assert.equal(safetyNumber(a, b), safetyNumber(b, a))
    assert.match(formatSafetyNumber(safetyNumber(a, b)), /^(\d{5} ){11}\d{5}$/)
    assert.equal(compareScannable(scannableSafetyNumber(b, a), a, b), true, 'alice scans bob\'s screen')
    assert.equal(compareScannable(scannableSafetyNumber(a, b), b, a), true, 'bob scans alice\'s screen')
    const mallory = { ...b, exchangeKey: deriveExchangeKey(createIdentity()).publicKey }
    assert.notEqual(safetyNumber(a, mallory), safetyNumber(a, b))
    assert.equal(compareScannable(scannableSafetyNumber(mallory, a), a, b), false)
    assert.throws(() => compareScannable('AAAA', a, b), { code: ErrorCode.InvalidArgument })
  })
})
