import { existsSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { loadPolicy, POLICY_FILE } from '@agentmesh/client'
import { homeOf, withCommon, type CommonOpts } from '../common.ts'
import { output } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

/**
 * What `agentmesh init` writes for a new agent: strangers knock first, and each knock is held for
 * the owner's decision (docs/policy.md "The default for new agents").
 */
export const KNOCK_FIRST_POLICY = { version: 1, default_action: 'hold' } as const
/** An agent that takes messages from anyone (deny list and limits still apply when added). */
export const OPEN_POLICY = { version: 1, open: true } as const

/** Writes a policy file whole (a temporary file renamed over it: a watcher never reads half of it). */
export function writePolicy (home: string, policy: object): string {
  const path = join(home, POLICY_FILE)
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(policy, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, path)
  return path
}

export function policyCommands (program: Command, io: CliIo = processIo()): void {
  const policy = program.command('policy').description('who may write to this agent: show the policy, or switch between knock-first and open')

  withCommon(policy.command('show', { isDefault: true })
    .description('print the policy in force (the file, or open when there is none)'), { server: false })
    .action(async (o: CommonOpts) => {
      const path = join(homeOf(o, io.env), POLICY_FILE)
      const out = output(o.json === true, io)
      if (!existsSync(path)) {
        out.result({ path, exists: false, mode: 'open' }, `no policy file at ${path}: this agent takes messages from anyone (\`agentmesh policy knock-first\` holds strangers for you)`)
        return
      }
      const p = await loadPolicy(path) // an invalid file is AM_ERR_INVALID_POLICY naming the field
      const mode = p.open ? 'open' : 'knock-first'
      out.result({ path, exists: true, mode, policy: p },
        `${path}: ${mode}${p.open ? ' (messages need no grant)' : ` (strangers knock first; knocks: default ${p.default_action})`}; ` +
        `allow ${p.allow.amids.length + p.allow.handles.length + p.allow.organisations.length + p.allow.tiers.length} entr(ies), deny ${p.deny.amids.length + p.deny.handles.length + p.deny.organisations.length + p.deny.tiers.length}`)
    })

  withCommon(policy.command('open')
    .description('take messages from anyone, without a knock (writes {"version":1,"open":true}; a running agent applies it at once)'), { server: false })
    .action((o: CommonOpts) => {
      const path = writePolicy(homeOf(o, io.env), OPEN_POLICY)
      output(o.json === true, io).result({ path, mode: 'open' }, `${path}: open (messages need no grant)`)
    })

  withCommon(policy.command('knock-first')
    .description('hold strangers\' knocks for your decision; only agents you granted may write (writes the default policy of new agents)'), { server: false })
    .action((o: CommonOpts) => {
      const path = writePolicy(homeOf(o, io.env), KNOCK_FIRST_POLICY)
      output(o.json === true, io).result({ path, mode: 'knock-first' }, `${path}: knock-first (strangers knock first; \`agentmesh knocks\` lists what waits for you)`)
    })
}
