/**
 * The A2A bridge end to end (docs/protocol.md §24): an A2A client (the A2A SDK's own) reads an
 * opted-in AgentMesh agent's card through the relay, sends it messages that the agent answers with
 * the SDK as tasks, reads, lists, cancels and streams them; and an AgentMesh agent calls an A2A
 * agent built with the A2A SDK's server side on 127.0.0.1 (`a2aSend`).
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { ClientFactory, type Client } from '@a2a-js/sdk/client'
import { Message, Task, TaskState, StreamResponse } from '@a2a-js/sdk'
import { a2a, a2aCard, a2aSend, chat, tasks, type Connection, type Message as AmMessage } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Relay } from '@agentmesh/server'
import { a2aTestAgent, startRelay, waitFor } from '@agentmesh/testing'
import { sdkHarness } from './sdk-fixtures.ts'

type Json = Record<string, any>

/** Keeps the connection's message loop running (task requests are handled inside it). */
function drain (conn: Connection): AmMessage[] {
  const got: AmMessage[] = []
  void (async () => { for await (const m of conn.messages()) got.push(m) })()
  return got
}

const userMessage = (text: string, extra: Json = {}): Message => Message.fromJSON({ messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...extra })
const send = (m: Message, configuration?: Json) => ({ tenant: '', message: m, configuration: configuration === undefined ? undefined : { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: false, ...configuration }, metadata: undefined })
const stateOf = (t: Task): string => (Task.toJSON(t) as Json).status.state
const textOf = (t: Task): string => (Task.toJSON(t) as Json).artifacts?.[0]?.parts?.[0]?.text

async function rpc (relay: Relay, path: string, body: string | Json): Promise<{ status: number, body: Json }> {
  const res = await fetch(relay.url + path, { method: 'POST', headers: { 'content-type': 'application/json', 'A2A-Version': '1.0' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.status, body: await res.json() as Json }
}
const amCodeOf = (e: Json): string | undefined => (e.data as Json[] | undefined)?.find(d => d.domain === 'agentmesh')?.reason

describe('a2a - inbound: A2A clients reach an opted-in agent through the relay', () => {
  const { relays, agent, open } = sdkHarness()
  let relay: Relay
  let bob: Connection
  let base: string
  let client: Client
  const canceled: string[] = []

  it('a2a - an agent that did not opt in has no card (404, AM_ERR_BRIDGE_NOT_ENABLED); after enable its card names it and says E2EE ends at the bridge', async () => {
    relay = await startRelay()
    relays.push(relay)
    const b = agent('bob')
    bob = await open(relay, b)
    drain(bob)
    await chat(bob).setHandle('bob-a2a')
    base = `${relay.url}/a2a/${bob.amid}`
    const before = await fetch(`${base}/.well-known/agent-card.json`)
    assert.equal(before.status, 404)
    assert.equal(((await before.json()) as Json).error.code, ErrorCode.BridgeNotEnabled)
    assert.equal((await a2a(bob).status()).enabled, false)

    const setting = await a2a(bob).serve(async (task) => {
      if (task.args.startsWith('slow')) {
        await new Promise<void>((resolve) => { task.signal.addEventListener('abort', () => { canceled.push(task.id); resolve() }, { once: true }) })
        return 'never'
      }
      await task.update('working', 'thinking')
      return `echo: ${task.args}`
    })
    assert.deepEqual([setting.enabled, setting.url, setting.card_url, setting.e2ee], [true, base, `${base}/.well-known/agent-card.json`, false])

    const card = await (await fetch(setting.card_url)).json() as Json
    assert.equal(card.name, 'bob')
    assert.match(card.description, new RegExp(`^AgentMesh agent @bob-a2a \\(${bob.amid}\\)`))
    assert.match(card.description, /End-to-end encryption ends at this bridge/)
    assert.deepEqual(card.supportedInterfaces, [{ url: base, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }])
    assert.equal(card.capabilities.streaming, true)
    assert.equal(card.capabilities.extensions[0].params.e2ee, false)
    assert.ok((card.skills as Json[]).some(s => s.id === 'a2a'), 'the a2a command is a skill')
    // by handle too, the same card
    const byHandle = await (await fetch(`${relay.url}/a2a/@bob-a2a/.well-known/agent-card.json`)).json() as Json
    assert.deepEqual(byHandle, card)
    client = await new ClientFactory().createFromUrl(base + '/')
  })

  it('a2a - SendMessage: the agent answers the task with the SDK and the A2A client gets the result; GetTask and ListTasks read it', async () => {
    const r = await client.sendMessage(send(userMessage('hello')))
    assert.ok('status' in r, 'a task')
    const t = r as Task
    assert.equal(stateOf(t), 'TASK_STATE_COMPLETED')
    assert.equal(textOf(t), 'echo: hello')
    const got = await client.getTask({ tenant: '', id: t.id })
    assert.deepEqual([stateOf(got), textOf(got), got.contextId], ['TASK_STATE_COMPLETED', 'echo: hello', t.contextId])
    // the AgentMesh task is the relay's: requested by the relay, command a2a, args the text
    const list = await client.listTasks({ tenant: '', contextId: t.contextId, status: TaskState.TASK_STATE_UNSPECIFIED, pageSize: 10, pageToken: '', historyLength: undefined, statusTimestampAfter: undefined, includeArtifacts: true } as never)
    assert.deepEqual(list.tasks.map(x => x.id), [t.id])
    // a second message in the same context is listed with it, newest first
    const r2 = await client.sendMessage(send(userMessage('again', { contextId: t.contextId }))) as Task
    assert.equal(textOf(r2), 'echo: again')
    const list2 = await client.listTasks({ tenant: '', contextId: t.contextId, status: TaskState.TASK_STATE_UNSPECIFIED, pageSize: 10, pageToken: '', includeArtifacts: true } as never)
    assert.deepEqual(list2.tasks.map(x => x.id), [r2.id, t.id])
    // without a context: refused (anyone may call the endpoint)
    const bare = await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: 7, method: 'ListTasks', params: {} })
    assert.equal(bare.body.error.code, -32602)
    assert.equal(amCodeOf(bare.body.error), ErrorCode.InvalidArgument)
    // an unknown task, and a task of bob's that did not come through the bridge: not found
    await assert.rejects(client.getTask({ tenant: '', id: crypto.randomUUID() }), /not found/i)
    const own = await tasks(bob).dispatch({ to: bob.amid, command: 'status' })
    await assert.rejects(client.getTask({ tenant: '', id: own.id }), /not found/i)
  })

  it('a2a - CancelTask cancels the AgentMesh task: the agent\'s handler is aborted', async () => {
    const r = await client.sendMessage(send(userMessage('slow job'), { returnImmediately: true })) as Task
    assert.ok(['TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING'].includes(stateOf(r)))
    await waitFor(async () => stateOf(await client.getTask({ tenant: '', id: r.id })) === 'TASK_STATE_WORKING', 'the agent works on it', 10_000)
    const c = await client.cancelTask({ tenant: '', id: r.id, metadata: undefined })
    assert.equal(stateOf(c), 'TASK_STATE_CANCELED')
    await waitFor(() => canceled.includes(r.id), 'the handler is aborted', 10_000)
    assert.equal(stateOf(await client.getTask({ tenant: '', id: r.id })), 'TASK_STATE_CANCELED')
    // SubscribeToTask on a running task: its updates until the cancel ends it
    const r2 = await client.sendMessage(send(userMessage('slow watched'), { returnImmediately: true })) as Task
    await waitFor(async () => stateOf(await client.getTask({ tenant: '', id: r2.id })) === 'TASK_STATE_WORKING', 'the agent works on it', 10_000)
    const seen: string[] = []
    const watching = (async () => {
      for await (const ev of client.resubscribeTask({ tenant: '', id: r2.id })) {
        const j = StreamResponse.toJSON(ev) as Json
        seen.push(j.task?.status.state ?? j.statusUpdate?.status.state ?? 'other')
      }
    })()
    await waitFor(() => seen.length > 0, 'the subscription answers the task', 10_000)
    await client.cancelTask({ tenant: '', id: r2.id, metadata: undefined })
    await watching
    assert.equal(seen[0], 'TASK_STATE_WORKING')
    assert.equal(seen.at(-1), 'TASK_STATE_CANCELED')
    // a canceled task cannot be canceled again into something else; a completed one is not cancelable
    const done = await client.sendMessage(send(userMessage('quick'))) as Task
    await assert.rejects(client.cancelTask({ tenant: '', id: done.id, metadata: undefined }), /not cancelable/i)
  })

  it('a2a - an agent has at most 16 A2A tasks running: of 17 sent at once, one is refused with AM_ERR_BRIDGE_BUSY until one ends', async () => {
    const sendRaw = async (i: number) => await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: i, method: 'SendMessage', params: { message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: `slow ${i}` }] }, configuration: { returnImmediately: true } } })
    const answers = await Promise.all(Array.from({ length: 17 }, async (_, i) => await sendRaw(i)))
    const taken = answers.filter(a => a.body.result !== undefined)
    const refused = answers.filter(a => a.body.error !== undefined)
    assert.deepEqual([taken.length, refused.length], [16, 1])
    assert.deepEqual([refused[0]!.status, refused[0]!.body.error.code, amCodeOf(refused[0]!.body.error)], [200, -32603, ErrorCode.BridgeBusy])
    assert.match(refused[0]!.body.error.message, /16 A2A tasks running/)
    // nothing was made for the refused message: the 16 are all there are, then they are canceled
    const ids = taken.map(a => a.body.result.task.id as string)
    await waitFor(async () => (await Promise.all(ids.map(async id => stateOf(await client.getTask({ tenant: '', id }))))).every(st => st === 'TASK_STATE_WORKING'), 'the agent works on all 16', 15_000)
    for (const id of ids) assert.equal(stateOf(await client.cancelTask({ tenant: '', id, metadata: undefined })), 'TASK_STATE_CANCELED')
    await waitFor(() => ids.every(id => canceled.includes(id)), 'every handler aborted', 10_000)
    // their executions ended: the next message is taken again
    await waitFor(async () => {
      const r = await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: 18, method: 'SendMessage', params: { message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: 'after' }] } } })
      return r.body.result?.task?.status?.state === 'TASK_STATE_COMPLETED'
    }, 'a message taken again', 10_000)
  })

  it('a2a - SendStreamingMessage streams the task, its status updates and the result', async () => {
    const states: string[] = []
    let artifact: string | undefined
    let statusText: string | undefined
    for await (const ev of client.sendMessageStream(send(userMessage('streamed')))) {
      const j = StreamResponse.toJSON(ev) as Json
      if (j.task !== undefined) states.push(j.task.status.state)
      if (j.statusUpdate !== undefined) {
        states.push(j.statusUpdate.status.state)
        statusText = j.statusUpdate.status.message?.parts?.[0]?.text ?? statusText
      }
      if (j.artifactUpdate !== undefined) artifact = j.artifactUpdate.artifact.parts[0].text
    }
    assert.equal(states[0], 'TASK_STATE_SUBMITTED')
    assert.ok(states.includes('TASK_STATE_WORKING'), `working among ${states.join(', ')}`)
    assert.equal(states.at(-1), 'TASK_STATE_COMPLETED')
    assert.equal(artifact, 'echo: streamed')
    assert.equal(statusText, 'echo: streamed')
  })

  it('a2a - bad JSON-RPC answers JSON-RPC errors with AgentMesh\'s code in data; a follow-up on a task is refused', async () => {
    const parse = await rpc(relay, `/a2a/${bob.amid}`, '{not json')
    assert.deepEqual([parse.status, parse.body.error.code, amCodeOf(parse.body.error)], [200, -32700, ErrorCode.BadJson])
    const method = await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: 1, method: 'NoSuchMethod', params: {} })
    assert.deepEqual([method.body.id, method.body.error.code, amCodeOf(method.body.error)], [1, -32601, ErrorCode.NotFound])
    const noText = await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: 2, method: 'SendMessage', params: { message: { messageId: 'm', role: 'ROLE_USER', parts: [] } } })
    assert.deepEqual([noText.body.error.code, amCodeOf(noText.body.error)], [-32602, ErrorCode.InvalidArgument])
    const followUp = await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: 3, method: 'SendMessage', params: { message: { messageId: 'm2', role: 'ROLE_USER', taskId: crypto.randomUUID(), parts: [{ text: 'more' }] } } })
    assert.equal(followUp.body.error.code, -32602)
    assert.match(followUp.body.error.message, /no follow-up/)
    const big = await rpc(relay, `/a2a/${bob.amid}`, { jsonrpc: '2.0', id: 4, method: 'SendMessage', params: { message: { messageId: 'm3', role: 'ROLE_USER', parts: [{ text: 'x'.repeat(70 * 1024) }] } } })
    // refused before JSON-RPC, in the REST error shape: too large (413), no such endpoint (404)
    assert.deepEqual([big.status, big.body.error.code], [413, ErrorCode.BodyTooLarge])
    const nobody = await rpc(relay, '/a2a/@nobody-here', { jsonrpc: '2.0', id: 5, method: 'GetTask', params: { id: 'x' } })
    assert.deepEqual([nobody.status, nobody.body.error.code], [404, ErrorCode.BridgeNotEnabled])
  })

  it('a2a - disable: the card answers 404 again; another agent cannot change bob\'s setting', async () => {
    const eve = await open(relay, agent('eve'))
    await assert.rejects(eve.request('PUT', `/api/v1/agents/${bob.amid}/a2a`, { enabled: false }), (e: unknown) => AgentMeshError.is(e, ErrorCode.Forbidden))
    await assert.rejects(eve.request('PUT', `/api/v1/agents/${eve.amid}/a2a`, { enabled: 'yes' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    assert.equal((await a2a(bob).disable()).enabled, false)
    const res = await fetch(`${base}/.well-known/agent-card.json`)
    assert.equal(res.status, 404)
    assert.equal(((await res.json()) as Json).error.code, ErrorCode.BridgeNotEnabled)
  })
})

describe('a2a - outbound: an AgentMesh agent calls an A2A agent', () => {
  let peer: Awaited<ReturnType<typeof a2aTestAgent>>
  after(async () => { await new Promise<void>((resolve) => peer.server.close(() => resolve())) })

  it('a2a - a2aSend gets the remote agent\'s answer (blocking and streamed) and a2aCard its card', async () => {
    peer = await a2aTestAgent()
    const card = await a2aCard(peer.url) as Json
    assert.deepEqual([card.name, card.skills[0].id], ['Upper', 'upper'])
    const reply = await a2aSend(peer.url, 'hello mesh')
    assert.deepEqual([reply.kind, reply.state, reply.text, reply.agent], ['task', 'completed', 'HELLO MESH', 'Upper'])
    const seen: string[] = []
    const streamed = await a2aSend(peer.url, 'streamed', { stream: true, onUpdate: (u) => { seen.push(u.kind + (u.state === undefined ? '' : ':' + u.state)) } })
    assert.deepEqual([streamed.state, streamed.text], ['completed', 'STREAMED'])
    assert.deepEqual(seen, ['task:submitted', 'status:working', 'artifact', 'status:completed'])
    assert.deepEqual(peer.requests, ['hello mesh', 'streamed'])
  })

  it('a2a - an A2A 0.3 agent (the SDK\'s compatibility layer on both sides) answers too', async () => {
    const old = await a2aTestAgent({ version: '0.3' })
    try {
      const reply = await a2aSend(old.url, 'legacy peer')
      assert.deepEqual([reply.kind, reply.state, reply.text], ['task', 'completed', 'LEGACY PEER'])
      assert.deepEqual(old.requests, ['legacy peer'])
    } finally {
      await new Promise<void>((resolve) => old.server.close(() => resolve()))
    }
  })

  it('a2a - a URL with nothing there is AM_ERR_REMOTE_AGENT; a non-URL AM_ERR_INVALID_ARGUMENT', async () => {
    await assert.rejects(a2aSend(peer.url.replace('/agent', '/nothing'), 'x'), (e: unknown) => AgentMeshError.is(e, ErrorCode.RemoteAgent))
    await assert.rejects(a2aSend('not a url', 'x'), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
  })
})

describe('a2a - a request is held at most a2aStreamMs', () => {
  const { relays, agent, open } = sdkHarness()

  it('a2a - a blocking SendMessage the agent does not answer in time answers the task as it stands; a stream ends; the task goes on', async () => {
    const relay = await startRelay({ a2aStreamMs: 1000 })
    relays.push(relay)
    const bob = await open(relay, agent('bob'))
    drain(bob)
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    await a2a(bob).serve(async () => { await held; return 'late answer' })
    const client = await new ClientFactory().createFromUrl(`${relay.url}/a2a/${bob.amid}/`)
    const r = await client.sendMessage(send(userMessage('take your time'))) as Task
    assert.ok(['TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING'].includes(stateOf(r)), stateOf(r))
    const states: string[] = []
    for await (const ev of client.sendMessageStream(send(userMessage('streamed, slowly')))) {
      const j = StreamResponse.toJSON(ev) as Json
      states.push(j.task?.status.state ?? j.statusUpdate?.status.state ?? 'other')
    }
    assert.equal(states[0], 'TASK_STATE_SUBMITTED')
    assert.ok(!states.includes('TASK_STATE_COMPLETED'), states.join(', '))
    // the agent answers later: the tasks complete, GetTask reads the results
    release()
    await waitFor(async () => stateOf(await client.getTask({ tenant: '', id: r.id })) === 'TASK_STATE_COMPLETED', 'the task completes', 10_000)
    assert.equal(textOf(await client.getTask({ tenant: '', id: r.id })), 'late answer')
  })
})
