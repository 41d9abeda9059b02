/**
 * Sealing the agent's state under another passphrase (`agentmesh identity seal`, `unseal`,
 * `passphrase`). The state key is derived from the identity's secret, the state's salt and, when
 * one is set, the passphrase (docs/protocol.md §14.5): a passphrase set or changed later would
 * leave every record sealed under the old key. So every record the old key opens is sealed again
 * under a new key (a new salt, the current scrypt parameters), in one step that overwrites what it
 * replaces (secure delete) and empties the write-ahead log. Records sealed under a day's key
 * (first byte 0xE1, e2ee.ts) are left as they are: that day's key is itself a record sealed under
 * the state key, and is sealed again with the rest.
 */
import { randomBytes } from 'node:crypto'
import { STATE_SCRYPT, STATE_SCRYPT_V1, deriveStateKey, openRecord, parseScryptParams, scryptParamsText, sealRecord, type Identity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { ClientState } from './state.ts'

export interface RekeyResult {
  /** records sealed again under the new key */
  resealed: number
  /** records left as they were: sealed under a day's key (or, without the old key opening them, damaged) */
  left: number
  /** the state was already sealed under the new passphrase (a run interrupted after this step): nothing done */
  already: boolean
  /** no state was made yet: the first connection makes it under the passphrase given then */
  empty: boolean
}

const has = (p: string | undefined): p is string => p !== undefined && p !== ''

function opens (key: Uint8Array, check: Uint8Array, amid: string): boolean {
  try { return new TextDecoder().decode(openRecord(key, 'meta', 'check', check)) === amid } catch { return false }
}

/**
 * Seals `state` again for `to` (a passphrase, or undefined for none), opening it with `from`.
 * Throws AM_ERR_BAD_PASSPHRASE when `from` does not open it. Run it while no other process uses
 * the state: one that holds the old key would seal its next records under it.
 */
export function rekeyState (state: ClientState, identity: Identity, from: string | undefined, to: string | undefined): RekeyResult {
  return state.secureDelete(() => {
    const salt = state.metaGet('state_salt')
    const check = state.recordGet('meta', 'check')
    if (salt === undefined || check === undefined) return { resealed: 0, left: 0, already: false, empty: true }
    const recorded = state.metaGet('state_scrypt')
    const params = recorded === undefined ? STATE_SCRYPT_V1 : parseScryptParams(recorded)
    const saltBytes = Buffer.from(salt, 'base64url')
    const oldKey = deriveStateKey(identity.secretKey, saltBytes, from, params)
    try {
      if (!opens(oldKey, check, identity.amid)) {
        // an earlier run sealed the state and stopped before identity.json was written: done already
        const target = (has(to) ? to : '') === (has(from) ? from : '') ? undefined : deriveStateKey(identity.secretKey, saltBytes, to, params)
        if (target !== undefined && opens(target, check, identity.amid)) { target.fill(0); return { resealed: 0, left: 0, already: true, empty: false } }
        target?.fill(0)
        throw new AgentMeshError(ErrorCode.BadPassphrase, has(from)
          ? 'the passphrase does not open the agent state (state.db); set AGENTMESH_PASSPHRASE to the one it was sealed with'
          : 'the agent state (state.db) is sealed with a passphrase and none was given; set AGENTMESH_PASSPHRASE')
      }
      const newSalt = randomBytes(32)
      const newKey = deriveStateKey(identity.secretKey, newSalt, to, STATE_SCRYPT)
      let resealed = 0
      let left = 0
      try {
        for (const kind of state.recordKinds()) {
          for (const r of state.recordList(kind)) {
            let plain: Buffer
            try {
              plain = openRecord(oldKey, kind, r.key, r.value)
            } catch {
              left++ // under a day's key, which is sealed again with that key's record; or damaged
              continue
            }
            state.recordPut(kind, r.key, sealRecord(newKey, kind, r.key, plain), r.at)
            plain.fill(0)
            resealed++
          }
        }
        state.metaSet('state_salt', newSalt.toString('base64url'))
        state.metaSet('state_scrypt', scryptParamsText(STATE_SCRYPT))
        state.metaSet('state_passphrase', has(to) ? 'yes' : 'no')
      } finally {
        newKey.fill(0)
      }
      return { resealed, left, already: false, empty: false }
    } finally {
      oldKey.fill(0)
    }
  })
}
