/**
 * `agentmesh identity seal | passphrase | unseal`: put identity.json under a passphrase set after
 * `init`, change it, or take it off. The state (state.db) is keyed by the identity and the
 * passphrase (docs/protocol.md §14.5), so it is sealed again first (state-rekey.ts, one step that
 * can be run again), then identity.json is rewritten atomically (temporary 0600 file, fsync,
 * rename). Passphrases come from the environment or a terminal prompt, never from the command line.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { IDENTITY_FILE, identityIsSealed, loadIdentity, resealIdentity } from '@agentmesh/crypto'
import { STATE_FILE, rekeyState, sqliteState, type RekeyResult } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { homeOf, withCommon, type CommonOpts } from '../common.ts'
import { output } from '../output.ts'
import type { CliIo } from '../io.ts'

const given = (v: string | undefined): v is string => v !== undefined && v !== ''

/** A passphrase the identity is sealed with now: from `AGENTMESH_PASSPHRASE`, else asked on the terminal. */
async function currentPassphrase (io: CliIo, path: string): Promise<string> {
  if (given(io.env.AGENTMESH_PASSPHRASE)) return io.env.AGENTMESH_PASSPHRASE
  if (io.secret !== undefined) {
    const p = await io.secret(`Passphrase of ${path}: `)
    if (given(p)) return p
  }
  throw new AgentMeshError(ErrorCode.BadPassphrase, `the identity in ${path} is sealed with a passphrase and none was given; set AGENTMESH_PASSPHRASE (it is never read from the command line)`)
}

/** A new passphrase: from `variable` in the environment, else typed twice on the terminal. */
async function newPassphrase (io: CliIo, variable: string): Promise<string> {
  const fromEnv = io.env[variable]
  if (given(fromEnv)) return fromEnv
  if (io.secret !== undefined) {
    const a = await io.secret('New passphrase: ')
    if (!given(a)) throw new AgentMeshError(ErrorCode.BadPassphrase, 'the new passphrase is empty; nothing was changed')
    if (await io.secret('The same again: ') !== a) throw new AgentMeshError(ErrorCode.BadPassphrase, 'the two entries differ; nothing was changed')
    return a
  }
  throw new AgentMeshError(ErrorCode.BadPassphrase, `no new passphrase given: set ${variable} (it is never read from the command line), or run this on a terminal to type it; nothing was changed`)
}

/** The state first (a run stopped in between is finished by running again), then identity.json. */
function reseal (home: string, from: string | undefined, to: string | undefined): { path: string, amid: string, state?: RekeyResult } {
  const id = loadIdentity(home, given(from) ? { passphrase: from } : {})
  let state: RekeyResult | undefined
  const statePath = join(home, STATE_FILE)
  if (existsSync(statePath)) {
    const st = sqliteState(statePath)
    try { state = rekeyState(st, id, from, to) } finally { st.close() }
  }
  const r = resealIdentity(home, { ...(given(from) ? { from } : {}), ...(given(to) ? { to } : {}) })
  return { path: r.path, amid: id.amid, ...(state === undefined ? {} : { state }) }
}

function stateNote (s: RekeyResult | undefined): string {
  if (s === undefined || s.empty) return 'no state yet'
  if (s.already) return 'state.db was sealed under it already'
  return `state.db sealed again (${s.resealed} records${s.left > 0 ? `, ${s.left} under their day's key left as they are` : ''})`
}

export function identitySealCommands (program: Command, io: CliIo): void {
  const identity = program.command('identity')
    .description('seal identity.json (and the agent\'s state) under a passphrase, change it, or unseal them; stop the agent\'s other processes first')

  withCommon(identity.command('seal')
    .description('seal a clear identity.json under a passphrase: AGENTMESH_PASSPHRASE, or typed twice on a terminal (never an argument); every command then needs AGENTMESH_PASSPHRASE'), { server: false })
    .action(async (o: CommonOpts) => {
      const home = homeOf(o, io.env)
      const path = join(home, IDENTITY_FILE)
      if (identityIsSealed(home)) {
        throw new AgentMeshError(ErrorCode.InvalidArgument, `the identity in ${path} is sealed already; \`agentmesh identity passphrase\` changes its passphrase`)
      }
      loadIdentity(home, {}) // a missing or damaged file says so before a passphrase is asked for
      const to = await newPassphrase(io, 'AGENTMESH_PASSPHRASE')
      const r = reseal(home, undefined, to)
      output(o.json === true, io).result({ amid: r.amid, home, sealed: true, ...(r.state === undefined ? {} : { state: r.state }) },
        `${path} sealed under the passphrase; ${stateNote(r.state)}. Every command now needs AGENTMESH_PASSPHRASE`)
    })

  withCommon(identity.command('passphrase')
    .description('change the passphrase of a sealed identity.json and of the agent\'s state: the current one from AGENTMESH_PASSPHRASE, the new one from AGENTMESH_NEW_PASSPHRASE (or both typed on a terminal)'), { server: false })
    .action(async (o: CommonOpts) => {
      const home = homeOf(o, io.env)
      const path = join(home, IDENTITY_FILE)
      if (!identityIsSealed(home)) {
        loadIdentity(home, {})
        throw new AgentMeshError(ErrorCode.InvalidArgument, `the identity in ${path} is not sealed; \`agentmesh identity seal\` seals it`)
      }
      const from = await currentPassphrase(io, path)
      loadIdentity(home, { passphrase: from }) // a wrong one is refused before a new one is asked for
      const to = await newPassphrase(io, 'AGENTMESH_NEW_PASSPHRASE')
      const r = reseal(home, from, to)
      output(o.json === true, io).result({ amid: r.amid, home, sealed: true, ...(r.state === undefined ? {} : { state: r.state }) },
        `${path} sealed under the new passphrase; ${stateNote(r.state)}. Set AGENTMESH_PASSPHRASE to the new one`)
    })

  withCommon(identity.command('unseal')
    .description('write identity.json with its key in the clear again (and the agent\'s state without the passphrase): the current passphrase from AGENTMESH_PASSPHRASE or a terminal'), { server: false })
    .action(async (o: CommonOpts) => {
      const home = homeOf(o, io.env)
      const path = join(home, IDENTITY_FILE)
      if (!identityIsSealed(home)) {
        loadIdentity(home, {})
        throw new AgentMeshError(ErrorCode.InvalidArgument, `the identity in ${path} is not sealed; nothing to do`)
      }
      const from = await currentPassphrase(io, path)
      const r = reseal(home, from, undefined)
      output(o.json === true, io).result({ amid: r.amid, home, sealed: false, ...(r.state === undefined ? {} : { state: r.state }) },
        `${path} holds its key in the clear again; ${stateNote(r.state)}. Unset AGENTMESH_PASSPHRASE: whoever reads the home now holds the agent`)
    })
}
