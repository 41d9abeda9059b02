/**
 * KNOCK, grants, policy reloads and the circuit breaker (a one-way flood is no loop), driven as a user would: one relay,
 * several agents, each through the CLI (in process) in its own home.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assertCliError, cli, policyApplied, spawnRelay, startCli, tempDir, waitFor, type RelayProcess, type RunningCli } from '@agentmesh/testing'

const children: RunningCli[] = []
function track (c: RunningCli): RunningCli {
  children.push(c)
  return c
}

/** A distinctive message text. */
function secret (label: string): string {
  return `secret-${randomBytes(6).toString('hex')}-${label}`
}


async function init (home: string, server: string, name: string): Promise<string> {
  const r = await cli(['init', '--open', '--name', name, '--json'], { home, server })
  assert.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.lines[0]!) as { amid: string, registered: boolean }
  assert.equal(j.registered, true)
  return j.amid
}

/** Sends one message per text in one `send --stdin` run. */
async function send (home: string, server: string, to: string, texts: string[]): Promise<string[]> {
  const r = await cli(['send', to, '--stdin', '--json'], { home, server, input: texts.join('\n') + '\n' })
  assert.equal(r.code, 0, r.stderr)
  const acks = r.lines.map(l => JSON.parse(l) as { id: string, status: string })
  assert.equal(acks.length, texts.length, r.stdout)
  return acks.map(a => a.id)
}

/** `agentmesh knock … --json`; answers the knock id. */
async function knock (home: string, server: string, peer: string, intent: string, summary: string, extra: string[] = []): Promise<string> {
  const r = await cli(['knock', peer, '--intent', intent, '--summary', summary, '--json', ...extra], { home, server })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '', 'nothing on stderr in JSON mode')
  assert.equal(r.lines.length, 1, r.stdout)
  const j = JSON.parse(r.lines[0]!) as { id: string, peer: string, intent: string, status: string }
  assert.deepEqual([j.peer, j.intent, j.status], [peer, intent, 'sent'])
  assert.match(j.id, /^[A-Za-z0-9_-]{8,128}$/)
  return j.id
}

interface GrantJson { direction: 'issued' | 'received', id: string, grantor: string, grantee: string, scopes: string[], expires_at: number, valid: boolean }

async function grants (home: string, server: string): Promise<GrantJson[]> {
  const r = await cli(['grants', '--json'], { home, server })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '')
  return r.lines.map(l => JSON.parse(l) as GrantJson)
}

function writePolicy (home: string, policy: unknown): void {
  // as an editor saves: a new file renamed over the old one
  const tmp = join(home, `.policy-${randomBytes(4).toString('hex')}.tmp`)
  writeFileSync(tmp, typeof policy === 'string' ? policy : JSON.stringify(policy, null, 2))
  renameSync(tmp, join(home, 'policy.json'))
}

interface Provenance { tier: string, organisation: string | null, handle: string | null, relation: string, grant?: { id: string, scopes: string[], expires_at: number } }
interface Msg { id: string, from: string, to: string, type: string, encrypted: boolean, text?: string, untrusted?: boolean, provenance?: Provenance | null, safety_number_verified?: boolean }
interface Warning { code: string, message: string }
interface KnockLine { id: string, from: string, tier: string, intent: { category: string, summary: string, scopes: string[] }, policy: string }

interface Listener {
  name: string
  readonly msgs: Msg[]
  readonly warnings: Warning[]
  readonly knocks: KnockLine[]
  stderr: () => string
  done: Promise<number | null>
  stop: () => Promise<number | null>
}

const all: Listener[] = []

/** Runs `agentmesh listen --json` in the background (in process) and collects what it prints. */
function listen (name: string, home: string, server: string, json = true): Listener {
  const run = track(startCli(['listen', ...(json ? ['--json'] : [])], { home, server }))
  const errJson = (): Array<{ warning?: Warning, knock?: KnockLine }> => run.errLines.flatMap((l) => {
    try { return [JSON.parse(l) as { warning?: Warning, knock?: KnockLine }] } catch { return [] }
  })
  const done = run.done.then(r => r.code)
  const l: Listener = {
    name,
    get msgs () { return run.lines.map(line => json ? JSON.parse(line) as Msg : { text: line } as Msg) },
    get warnings () { return errJson().flatMap(j => j.warning === undefined ? [] : [j.warning]) },
    get knocks () { return errJson().flatMap(j => j.knock === undefined ? [] : [j.knock]) },
    stderr: () => run.stderr(),
    done,
    async stop () {
      run.interrupt() // as SIGTERM
      return await done
    },
  }
  all.push(l)
  return l
}

/** waitFor, with what the listeners said in the error when it times out. */
async function until (cond: () => boolean, what: string, listeners: Listener[], timeoutMs = 20_000): Promise<void> {
  try {
    await waitFor(cond, what, timeoutMs)
  } catch (err) {
    const said = listeners.map(l => `${l.name}: stdout ${JSON.stringify(l.msgs.map(m => m.text ?? m.type))}; stderr ${l.stderr()}`).join('\n')
    throw new Error(`${(err as Error).message}\n${said}`)
  }
}

/** Polls `grants --json` in `home` until it shows a grant received from `grantor`. */
async function grantFrom (home: string, server: string, grantor: string, listeners: Listener[]): Promise<GrantJson> {
  let got: GrantJson | undefined
  const poll = async (): Promise<boolean> => {
    got = (await grants(home, server)).find(g => g.direction === 'received' && g.grantor === grantor)
    return got !== undefined
  }
  try {
    await waitFor(poll, `a grant from ${grantor} in ${home}`, 20_000)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${listeners.map(l => `${l.name}: stderr ${l.stderr()}`).join('\n')}`)
  }
  return got!
}

/** Waits until the registry shows the agent's published contact mode (its listen publishes it on connect and on a policy change). */
async function contactIs (server: string, amid: string, mode: 'knock' | 'open'): Promise<void> {
  const base = server.replace(/^ws/, 'http').replace(/\/ws$/, '')
  await waitFor(async () => ((await (await fetch(`${base}/api/v1/agents/${amid}`)).json()) as { contact?: string }).contact === mode, `${amid} to publish contact ${mode}`)
}

/** `agentmesh send` without a grant to a knock-first agent: exits 1 with AM_ERR_NO_GRANT and what to do, and sends nothing. */
async function refusedSend (home: string, server: string, to: string, text: string): Promise<void> {
  const r = await cli(['send', to, text], { home, server })
  assert.equal(r.code, 1, r.stdout + r.stderr)
  assert.equal(r.stdout, '', 'no id: nothing was sent')
  assert.match(r.stderr, new RegExp(`AM_ERR_NO_GRANT: .*knock first: agentmesh knock ${to}`))
}

const hasWarning = (l: Listener, code: string, re: RegExp): boolean => l.warnings.some(w => w.code === code && re.test(w.message))

// two tests at a time: the agents of each test are its own (tests 1 and 2 share theirs, in order)
describe('knock', { concurrency: 2 }, () => {
  const dir = tempDir()
  let relay: RelayProcess
  let server: string
  const home = (name: string): string => `${dir.path}/${name}`
  before(async () => {
    // a process of its own: `init` registers within 2 s, while a dozen agents share this process
    relay = await spawnRelay({ memory: true })
    server = relay.url
  })
  after(async () => {
    for (const l of all) await l.stop().catch(() => {})
    for (const c of children) c.interrupt()
    await Promise.all(children.map(async c => await c.done))
    await relay.kill()
    dir.cleanup()
  })

  // tests 1 and 2 share these agents, in this order
  const ids: Record<string, string> = {}
  let atBob: Listener | undefined
  describe('knock - first contact and grants', { concurrency: 1 }, () => {

  it('knock - policy decides first contact: allow list accepts, hold waits for the owner, intent and owner rejects reach the knocker, deny stays silent', async () => {
    const names = ['bob', 'alice', 'carol', 'dave', 'erin', 'frank']
    const amids = await Promise.all(names.map(n => init(home(n), server, n)))
    names.forEach((n, i) => { ids[n] = amids[i]! })
    const { bob, alice, carol, dave, frank } = ids as Record<'bob' | 'alice' | 'carol' | 'dave' | 'erin' | 'frank', string>
    writePolicy(home('bob'), {
      version: 1,
      default_action: 'hold',
      allow: { amids: [alice] },
      deny: { amids: [dave] },
      deny_action: 'silent',
      intents: { allowed: ['question', 'task'] },
    })
    atBob = listen('bob', home('bob'), server)
    const b = atBob
    const knockers = Object.fromEntries(['alice', 'carol', 'dave', 'erin', 'frank'].map(n => [n, listen(n, home(n), server)])) as Record<string, Listener>
    const everyone = [b, ...Object.values(knockers)]

    // carol writes without knocking: bob's profile says knock first, so her send fails and says so
    await contactIs(server, bob, 'knock')
    const c0 = secret('carol-unasked')
    await refusedSend(home('carol'), server, bob, c0)
    assert.equal(b.msgs.length, 0, 'nothing on bob\'s stdout')
    assert.ok(!b.stderr().includes(c0), 'the refused text is not shown')

    // dave (denied, silent) knocks first, so by the time later answers arrive bob has long decided on it
    const daveKnock = await knock(home('dave'), server, bob, 'question', 'may I ask something?')
    const [aliceKnock, carolKnock, erinKnock, frankKnock] = await Promise.all([
      knock(home('alice'), server, bob, 'question', 'hello from alice'),
      knock(home('carol'), server, bob, 'task', 'please review my PR', ['--scopes', 'chat,task:review']),
      knock(home('erin'), server, bob, 'negotiation', 'a price for your data'),
      knock(home('frank'), server, bob, 'question', 'quick question'),
    ])

    // alice: accepted by the allow list; the grant reaches her listen
    const got = await grantFrom(home('alice'), server, bob, everyone)
    assert.deepEqual([got.grantee, got.scopes, got.valid], [alice, ['chat'], true])
    assert.ok(got.expires_at > Date.now() + 29 * 24 * 3600_000, 'the default duration (30 days)')
    const a1 = secret('alice-1')
    await send(home('alice'), server, bob, [a1])
    await until(() => b.msgs.some(m => m.text === a1), 'alice\'s message at bob', everyone)
    // (handle: null: `init --name` names the agent, it claims no chat handle)
    const fromAlice = b.msgs.find(m => m.text === a1)!
    assert.equal(fromAlice.untrusted, true)
    assert.deepEqual(fromAlice.provenance, { tier: 'anonymous', organisation: null, handle: null, relation: 'granted', grant: { id: got.id, scopes: ['chat'], expires_at: got.expires_at } }, 'the policy in force gives tier and grant')
    assert.equal(fromAlice.safety_number_verified, false)

    // carol and frank: held; bob's listen says so, `knocks` lists them
    await until(() => b.knocks.length >= 2, 'the held knocks of carol and frank on bob\'s stderr', everyone)
    const held = Object.fromEntries(b.knocks.map(k => [k.from, k]))
    assert.deepEqual(Object.keys(held).sort(), [carol, frank].sort(), 'only carol and frank are held')
    assert.equal(held[carol]!.id, carolKnock)
    assert.equal(held[frank]!.id, frankKnock)
    assert.deepEqual([held[carol]!.intent.category, held[carol]!.intent.summary], ['task', 'please review my PR'])
    assert.match(held[carol]!.policy, /default_action: hold/)
    const listed = await cli(['knocks', '--json'], { home: home('bob'), server })
    assert.equal(listed.code, 0, listed.stderr)
    const rows = listed.lines.map(l => JSON.parse(l) as { id: string, from: string, intent: { category: string } })
    assert.deepEqual(rows.map(r => [r.id, r.from, r.intent.category]).sort(), [[carolKnock, carol, 'task'], [frankKnock, frank, 'question']].sort())

    // the owner accepts carol's and rejects frank's, with a reason
    const [acc, rej] = await Promise.all([
      cli(['knocks', 'accept', carolKnock, '--json'], { home: home('bob'), server }),
      cli(['knocks', 'reject', frankKnock, '--reason', 'busy', '--json'], { home: home('bob'), server }),
    ])
    assert.equal(acc.code, 0, acc.stderr)
    assert.equal(rej.code, 0, rej.stderr)
    const accJ = JSON.parse(acc.lines[0]!) as { id: string, decision: string, grant: { grantee: string, scopes: string[] } }
    assert.deepEqual([accJ.id, accJ.decision, accJ.grant.grantee, accJ.grant.scopes], [carolKnock, 'accept', carol, ['chat']])
    assert.deepEqual(JSON.parse(rej.lines[0]!), { id: frankKnock, decision: 'reject', silent: false })
    const left = await cli(['knocks', '--json'], { home: home('bob'), server })
    assert.deepEqual([left.code, left.stdout, left.stderr], [0, '', ''], 'no knock is held any more')

    await until(() => hasWarning(knockers.frank!, 'AM_ERR_KNOCK_REJECTED', /busy/), 'frank to see the rejection with "busy"', everyone)
    assert.ok(hasWarning(knockers.frank!, 'AM_ERR_KNOCK_REJECTED', new RegExp(`${bob}.*${frankKnock}`)), knockers.frank!.stderr())

    const carolGrant = await grantFrom(home('carol'), server, bob, everyone)
    assert.deepEqual([carolGrant.grantee, carolGrant.scopes], [carol, ['chat']])
    const c1 = secret('carol-1')
    await send(home('carol'), server, bob, [c1])
    await until(() => b.msgs.some(m => m.text === c1), 'carol\'s message at bob after the grant', everyone)

    // erin: rejected by the intents rule, with the reason
    await until(() => hasWarning(knockers.erin!, 'AM_ERR_KNOCK_REJECTED', /negotiation/), 'erin to see the rejection of negotiation', everyone)
    assert.ok(hasWarning(knockers.erin!, 'AM_ERR_KNOCK_REJECTED', new RegExp(erinKnock)), knockers.erin!.stderr())

    // dave: nothing ever comes back, and he holds no grant. Bob's listen decided on dave's knock
    // before erin's (it came first), so anything it sent dave reached the relay before erin's
    // rejection did: a message bob sends dave now arrives after it
    const toDave = secret('bob-to-dave')
    await send(home('bob'), server, dave, [toDave])
    await until(() => knockers.dave!.msgs.length > 0, 'bob\'s message at dave', everyone)
    assert.equal(knockers.dave!.stderr(), '', 'dave\'s listen shows nothing')
    assert.deepEqual(knockers.dave!.msgs.map(m => m.text), [toDave], 'nothing before bob\'s message')
    assert.deepEqual([knockers.dave!.msgs[0]!.untrusted, knockers.dave!.msgs[0]!.provenance?.relation], [true, 'open'], 'dave\'s policy is open (init --open): untrusted, relation "open"')
    assert.deepEqual(await grants(home('dave'), server), [], 'dave holds no grant')
    assert.ok(!b.stderr().includes(daveKnock), 'dave\'s knock is not held either')

    assert.deepEqual(b.msgs.map(m => [m.from, m.text]), [[alice, a1], [carol, c1]], 'bob printed exactly the two granted messages')
    assert.deepEqual(b.warnings.map(w => w.code), [], 'carol\'s unasked message never reached bob: ' + b.stderr())
    for (const n of ['alice', 'carol']) assert.deepEqual(knockers[n]!.warnings, [], knockers[n]!.stderr())
    for (const n of ['erin', 'frank']) assert.deepEqual(knockers[n]!.warnings.map(w => w.code), ['AM_ERR_KNOCK_REJECTED'], knockers[n]!.stderr())
    for (const l of Object.values(knockers)) assert.deepEqual([l.msgs.filter(m => m.text !== toDave), l.knocks], [[], []], l.name)
    for (const l of Object.values(knockers)) assert.equal(await l.stop(), 0, l.stderr())
    assert.notEqual(aliceKnock, carolKnock)
  })

  it('knock - grants lists the grants bob issued; after revoking alice\'s, her next message is refused and her listen drops the grant', async (t) => {
    if (atBob === undefined) { t.skip('needs the agents of the first test'); return }
    const b = atBob
    const { bob, alice, carol } = ids as Record<'bob' | 'alice' | 'carol', string>
    const before = await grants(home('bob'), server)
    assert.ok(before.every(g => g.direction === 'issued'), JSON.stringify(before))
    assert.deepEqual(before.map(g => g.grantee).sort(), [alice, carol].sort())
    for (const g of before) {
      assert.deepEqual([g.grantor, g.scopes, g.valid], [bob, ['chat'], true])
      assert.ok(g.expires_at > Date.now())
    }

    const rev = await cli(['grants', 'revoke', alice, '--json'], { home: home('bob'), server })
    assert.equal(rev.code, 0, rev.stderr)
    assert.deepEqual(JSON.parse(rev.lines[0]!), { peer: alice, revoked: true })
    assert.deepEqual((await grants(home('bob'), server)).map(g => g.grantee), [carol], 'only carol\'s grant is left')

    // alice's next send takes the revocation waiting for her (a connection that only sends acts on
    // it), forgets the grant, and fails instead of sending a message bob would drop
    const a2 = secret('alice-after-revoke')
    const r2 = await cli(['send', bob, a2], { home: home('alice'), server })
    assert.equal(r2.code, 1, r2.stdout + r2.stderr)
    assert.match(r2.stderr, new RegExp(`warning AM_ERR_NO_GRANT: ${bob} revoked its grant`), r2.stderr)
    assert.match(r2.stderr, /error AM_ERR_NO_GRANT: .*knock first/)
    assert.ok(!b.msgs.some(m => m.text === a2), 'not printed')
    assert.deepEqual(await grants(home('alice'), server), [], 'alice holds no grant from bob any more')

    // she may knock again: the allow list still accepts her, with a new grant
    const a = listen('alice', home('alice'), server)
    await knock(home('alice'), server, bob, 'question', 'sorry, again')
    const again = await grantFrom(home('alice'), server, bob, [a, b])
    assert.ok(!before.some(g => g.id === again.id), 'a new grant')
    const a3 = secret('alice-again')
    await send(home('alice'), server, bob, [a3])
    await until(() => b.msgs.some(m => m.text === a3), 'alice\'s message under the new grant', [a, b])
    assert.equal(await a.stop(), 0, a.stderr())
    assert.equal(await b.stop(), 0, b.stderr())
  })

  })

  it('knock - policy edits apply without a restart; a broken edit is reported and the old policy stays; a broken file stops a new listen', async (t) => {
    const [bob] = await Promise.all([init(home('p-bob'), server, 'bob'), init(home('p-carol'), server, 'carol')])
    const b = listen('p-bob', home('p-bob'), server)
    const c = listen('p-carol', home('p-carol'), server)
    const both = [b, c]

    // no policy.json: open
    const m1 = secret('open')
    await send(home('p-carol'), server, bob, [m1])
    await until(() => b.msgs.some(m => m.text === m1), 'carol\'s message at the open bob', both)

    // a policy appears: once bob's listen has it in force, messages without a grant are refused
    const applied = policyApplied(join(home('p-bob'), 'policy.json'))
    writePolicy(home('p-bob'), { version: 1, default_action: 'reject' })
    await applied
    // bob's listen publishes the change: carol's next send fails before it is sent
    await contactIs(server, bob, 'knock')
    const m2 = secret('closed')
    await refusedSend(home('p-carol'), server, bob, m2)

    // a broken edit: reported, and the policy before it stays in force
    writePolicy(home('p-bob'), '{ "version": 1, "default_action": "maybe" }\n')
    await until(() => b.warnings.some(w => w.code === 'AM_ERR_INVALID_POLICY'), 'bob\'s listen to report the broken policy', both)
    const bad = b.warnings.find(w => w.code === 'AM_ERR_INVALID_POLICY')!
    assert.match(bad.message, /policy\.json/)
    assert.match(bad.message, /default_action/)
    const k = await knock(home('p-carol'), server, bob, 'question', 'let me in?')
    await until(() => hasWarning(c, 'AM_ERR_KNOCK_REJECTED', /default_action: reject/), 'carol\'s knock rejected by the old policy', both)
    assert.ok(hasWarning(c, 'AM_ERR_KNOCK_REJECTED', new RegExp(k)), c.stderr())
    const m3 = secret('still-closed')
    await refusedSend(home('p-carol'), server, bob, m3)
    assert.deepEqual(b.msgs.map(m => m.text), [m1], 'only the message sent while open was printed')
    assert.deepEqual(b.knocks, [])

    // a fresh listen with the broken file does not start
    const [fresh, knocks] = await Promise.all([
      cli(['listen', '--timeout', '5'], { home: home('p-bob'), server }),
      cli(['knocks'], { home: home('p-bob'), server }),
    ])
    assertCliError(fresh, 'AM_ERR_INVALID_POLICY', 1, /policy\.json.*default_action/)
    assertCliError(knocks, 'AM_ERR_INVALID_POLICY', 1, /policy\.json.*default_action.*"maybe"/)
    assert.equal(await b.stop(), 0, b.stderr())
    assert.equal(await c.stop(), 0, c.stderr())
    t.diagnostic(`bob's listen reported the broken policy ${b.warnings.filter(w => w.code === 'AM_ERR_INVALID_POLICY').length} time(s)`)
  })

  it('knock - a one-way flood is no conversation loop: all 8 messages are shown, in order, even with a breaker threshold of 5', async (t) => {
    const [bob, alice] = await Promise.all([init(home('f-bob'), server, 'bob'), init(home('f-alice'), server, 'alice')])
    writePolicy(home('f-bob'), { version: 1, allow: { amids: [alice] }, breaker: { threshold: 5, window_s: 60, cooldown_s: 60 } })
    const b = listen('f-bob', home('f-bob'), server)
    const a = listen('f-alice', home('f-alice'), server)
    await knock(home('f-alice'), server, bob, 'question', 'may I write?')
    await grantFrom(home('f-alice'), server, bob, [a, b])
    const texts = Array.from({ length: 8 }, (_, i) => secret(`flood-${i + 1}`))
    await send(home('f-alice'), server, bob, texts)
    await until(() => b.msgs.length >= 8, 'all 8 messages at bob', [a, b])
    assert.deepEqual(b.msgs.map(m => m.text), texts, 'all 8, in order')
    assert.deepEqual(b.warnings, [], b.stderr())
    t.diagnostic(`bob's stderr: ${b.stderr()}`)
    assert.equal(await b.stop(), 0, b.stderr())
    assert.equal(await a.stop(), 0, a.stderr())
  })

  it('knock - bad input: missing or unknown arguments exit 2, an unknown intent, knock id or grant exit 1, each with one line', async () => {
    const [, bob] = await Promise.all([init(home('x-me'), server, 'me'), init(home('x-bob'), server, 'bob')])
    const o = { home: home('x-me'), server }
    const [noId, badAction, gossip, noIntent, unknownKnock, noGrant, badScope, longSummary, twoLines, notAmid, badDuration, optsMixed] = await Promise.all([
      cli(['knocks', 'accept'], o),
      cli(['knocks', 'maybe', 'x'], o),
      cli(['knock', bob, '--intent', 'gossip', '--summary', 'x'], o),
      cli(['knock', bob, '--summary', 'x'], o),
      cli(['knocks', 'accept', randomUUID()], o),
      cli(['grants', 'revoke', bob], o),
      cli(['knock', bob, '--intent', 'question', '--summary', 'x', '--scopes', 'Bad Scope'], o),
      cli(['knock', bob, '--intent', 'question', '--summary', 'x'.repeat(281)], o),
      cli(['knock', bob, '--intent', 'question', '--summary', 'one\ntwo'], o),
      cli(['grants', 'revoke', 'not-an-amid'], o),
      cli(['knock', bob, '--intent', 'question', '--summary', 'x', '--duration', '59'], o),
      cli(['knocks', 'accept', randomUUID(), '--reason', 'why'], o),
    ])
    assertCliError(noId, 'AM_ERR_INVALID_ARGUMENT', 2, /knock id/)
    assertCliError(badAction, 'AM_ERR_INVALID_ARGUMENT', 2, /maybe/)
    assertCliError(gossip, 'AM_ERR_INVALID_KNOCK', 1, /gossip|category/)
    assertCliError(noIntent, 'AM_ERR_INVALID_ARGUMENT', 2, /--intent/)
    assertCliError(unknownKnock, 'AM_ERR_NOT_FOUND', 1)
    assertCliError(noGrant, 'AM_ERR_NOT_FOUND', 1, new RegExp(bob))
    assertCliError(badScope, 'AM_ERR_INVALID_ARGUMENT', 2, /Bad Scope/)
    assertCliError(longSummary, 'AM_ERR_INVALID_KNOCK', 1, /summary/)
    assertCliError(twoLines, 'AM_ERR_INVALID_KNOCK', 1, /summary/)
    assertCliError(notAmid, 'AM_ERR_INVALID_ARGUMENT', 2, /not-an-amid/)
    assertCliError(badDuration, 'AM_ERR_INVALID_ARGUMENT', 2, /--duration/)
    assertCliError(optsMixed, 'AM_ERR_INVALID_ARGUMENT', 2, /--reason/)
    // none of them sent anything: the first thing bob gets is a message sent after them all
    const last = secret('after-the-errors')
    await send(home('x-me'), server, bob, [last])
    const nothing = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: home('x-bob'), server })
    assert.equal(nothing.code, 0, nothing.stderr)
    assert.deepEqual([nothing.lines.map(l => (JSON.parse(l) as Msg).text), nothing.stderr], [[last], ''])
  })

  it('knock - text mode: the refusal and the held knock read as lines; a silent reject sends nothing; the owner grants chosen scopes and duration', async () => {
    const [bob, gina] = await Promise.all([init(home('s-bob'), server, 'bob'), init(home('s-gina'), server, 'gina')])
    writePolicy(home('s-bob'), { version: 1 }) // the smallest policy: every knock is held
    const b = listen('s-bob', home('s-bob'), server, false)
    const g = listen('s-gina', home('s-gina'), server)
    const both = [b, g]
    await contactIs(server, bob, 'knock')
    const g0 = secret('gina-unasked')
    await refusedSend(home('s-gina'), server, bob, g0)
    const k1 = await knock(home('s-gina'), server, bob, 'notification', 'FYI: the build is green')
    const heldLine = (id: string, what: string): RegExp => new RegExp(`^agentmesh: knock ${id} from ${gina} is held for you: ${what} \\(default_action: hold[^)]*\\); answer with \`agentmesh knocks accept ${id}\` or \`agentmesh knocks reject ${id}\`$`, 'm')
    await until(() => heldLine(k1, '\\[notification\\] FYI: the build is green').test(b.stderr()), 'the held line on bob\'s stderr', both)
    assert.equal(b.stderr().split('\n').filter(l => l !== '').length, 1, b.stderr())
    assert.ok(!b.stderr().includes(g0))

    const listed = await cli(['knocks'], { home: home('s-bob'), server })
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(listed.lines, [`${k1}  ${gina} (anonymous)  [notification] FYI: the build is green  — scopes chat`])
    const silent = await cli(['knocks', 'reject', k1, '--silent'], { home: home('s-bob'), server })
    assert.deepEqual([silent.code, silent.lines, silent.stderr], [0, ['rejected silently'], ''])
    const none = await cli(['knocks'], { home: home('s-bob'), server })
    assert.deepEqual([none.code, none.stdout, none.stderr], [0, '', 'no knocks are waiting\n'])

    // gina knocks again; the owner accepts with its own scopes and duration. The grant is the first
    // answer gina's listen sees: the silent reject sent nothing.
    const k2 = await knock(home('s-gina'), server, bob, 'task', 'deploy it?', ['--scopes', 'chat,files:read'])
    await until(() => heldLine(k2, '\\[task\\] deploy it\\?').test(b.stderr()), 'the second held line', both)
    assert.match(b.stderr(), /scopes not granted: files:read/, 'the owner sees what the policy would not grant')
    const acc = await cli(['knocks', 'accept', k2, '--scopes', 'chat,files:read', '--duration', '3600'], { home: home('s-bob'), server })
    assert.equal(acc.code, 0, acc.stderr)
    assert.match(acc.lines[0]!, new RegExp(`^granted ${gina} chat,files:read until \\d{4}-`))
    const grant = await grantFrom(home('s-gina'), server, bob, both)
    assert.deepEqual(grant.scopes, ['chat', 'files:read'])
    assert.ok(Math.abs(grant.expires_at - (Date.now() + 3600_000)) < 60_000, `expires in an hour: ${new Date(grant.expires_at).toISOString()}`)
    const g1 = secret('gina-granted')
    await send(home('s-gina'), server, bob, [g1])
    // an anonymous peer under a grant: marked [unverified] in text mode
    await until(() => b.msgs.some(m => m.text?.endsWith(` ${gina} [unverified]: ${g1}`) === true), 'gina\'s message on bob\'s stdout, marked [unverified]', both)
    assert.equal(await b.stop(), 0, b.stderr())
    assert.equal(await g.stop(), 0, g.stderr())
    assert.deepEqual([g.msgs, g.warnings, g.knocks], [[], [], []], `nothing came to gina but the grant: ${g.stderr()}`)
  })

  it('knock - a granted peer later put in deny.amids is refused', async () => {
    const [bob, alice] = await Promise.all([init(home('d-bob'), server, 'bob'), init(home('d-alice'), server, 'alice')])
    writePolicy(home('d-bob'), { version: 1, allow: { amids: [alice] } })
    const b = listen('d-bob', home('d-bob'), server)
    const a = listen('d-alice', home('d-alice'), server)
    try {
      await knock(home('d-alice'), server, bob, 'question', 'hi')
      await grantFrom(home('d-alice'), server, bob, [a, b])
      const applied = policyApplied(join(home('d-bob'), 'policy.json'))
      writePolicy(home('d-bob'), { version: 1, deny: { amids: [alice] } })
      await applied
      const m = secret('denied')
      const [mid] = await send(home('d-alice'), server, bob, [m])
      // decided either way: printed, or refused with a warning naming it
      await until(() => b.msgs.length > 0 || hasWarning(b, 'AM_ERR_NO_GRANT', new RegExp(mid!)), 'bob to decide on the message', [a, b], 10_000)
      assert.deepEqual(b.msgs.map(x => x.text), [], 'the denied peer\'s message is not printed')
      assert.ok(b.warnings.some(w => w.code === 'AM_ERR_NO_GRANT'), b.stderr())
    } finally {
      await b.stop()
      await a.stop()
    }
  })

  it('knock - an outgoing one-way flood does not trip the sender\'s breaker: send --stdin stores all 8 and exits 0; they arrive in order', async () => {
    const [, alice] = await Promise.all([init(home('o-bob'), server, 'bob'), init(home('o-alice'), server, 'alice')])
    writePolicy(home('o-bob'), { version: 1, breaker: { threshold: 5, window_s: 60, cooldown_s: 60 } })
    const texts = Array.from({ length: 8 }, (_, i) => secret(`out-${i + 1}`))
    const r = await cli(['send', alice, '--stdin', '--json'], { home: home('o-bob'), server, input: texts.join('\n') + '\n' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.equal(r.lines.length, 8, `the ids of the 8 stored messages: ${r.stdout}`)
    const got = await cli(['listen', '--count', '8', '--timeout', '20', '--json'], { home: home('o-alice'), server })
    assert.equal(got.code, 0, got.stderr)
    assert.deepEqual(got.lines.map(l => (JSON.parse(l) as Msg).text), texts)
  })
})
