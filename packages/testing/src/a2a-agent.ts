/**
 * A small A2A 1.0 agent built with the A2A SDK's server side (its request handler and JSON-RPC
 * transport, on node:http), on 127.0.0.1: a real protocol peer for the A2A bridge's outbound tests.
 * It answers each message with a task: submitted, working ("on it"), an artifact with the text in
 * upper case, completed.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AgentCard, Message, Task } from '@a2a-js/sdk'
import {
  AgentEvent, DefaultRequestHandler, InMemoryTaskStore, JsonRpcTransportHandler, ServerCallContext,
  type AgentExecutor,
} from '@a2a-js/sdk/server'
import { LegacyJsonRpcTransportHandler } from '@a2a-js/sdk/compat/v0_3/server'

/** The agent's card as an A2A 0.3 agent publishes it (a single url, protocolVersion, preferredTransport). */
function legacyCard (url: string): unknown {
  return {
    name: 'Upper', description: 'answers in upper case', version: '1.0.0', url, protocolVersion: '0.3.0', preferredTransport: 'JSONRPC',
    capabilities: { streaming: true }, defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
    skills: [{ id: 'upper', name: 'Upper', description: 'upper-cases text', tags: ['text'] }],
  }
}

/** Starts the agent; its base URL is `url` (card at `<url>/.well-known/agent-card.json`), `requests` the texts it got. */
export async function a2aTestAgent (opts: { version?: '1.0' | '0.3' } = {}): Promise<{ url: string, server: Server, requests: string[] }> {
  const legacy = opts.version === '0.3'
  const requests: string[] = []
  const executor: AgentExecutor = {
    async execute (rc, bus) {
      const text = rc.userMessage.parts.map(p => p.content?.$case === 'text' ? p.content.value : '').join('')
      requests.push(text)
      const status = (state: string, msg?: string) => ({ state, timestamp: new Date().toISOString(), ...(msg === undefined ? {} : { message: { messageId: crypto.randomUUID(), role: 'ROLE_AGENT', taskId: rc.taskId, contextId: rc.contextId, parts: [{ text: msg }] } }) })
      bus.publish(AgentEvent.task(Task.fromJSON({ id: rc.taskId, contextId: rc.contextId, status: status('TASK_STATE_SUBMITTED'), history: [Message.toJSON(rc.userMessage)] })))
      bus.publish(AgentEvent.statusUpdate({ taskId: rc.taskId, contextId: rc.contextId, status: Task.fromJSON({ id: 'x', contextId: 'x', status: status('TASK_STATE_WORKING', 'on it') }).status, metadata: undefined }))
      bus.publish(AgentEvent.artifactUpdate({ taskId: rc.taskId, contextId: rc.contextId, artifact: Task.fromJSON({ id: 'x', contextId: 'x', artifacts: [{ artifactId: 'a1', name: 'answer', parts: [{ text: text.toUpperCase() }] }] }).artifacts[0], append: false, lastChunk: true, metadata: undefined }))
      bus.publish(AgentEvent.statusUpdate({ taskId: rc.taskId, contextId: rc.contextId, status: Task.fromJSON({ id: 'x', contextId: 'x', status: status('TASK_STATE_COMPLETED') }).status, metadata: undefined }))
      bus.finished()
    },
    async cancelTask () {},
  }
  let url = ''
  const card = () => AgentCard.fromJSON({
    name: 'Upper', description: 'answers in upper case', version: '1.0.0',
    supportedInterfaces: [{ url, protocolBinding: 'JSONRPC', protocolVersion: legacy ? '0.3' : '1.0' }],
    capabilities: { streaming: true }, defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
    skills: [{ id: 'upper', name: 'Upper', description: 'upper-cases text', tags: ['text'] }],
  })
  const store = new InMemoryTaskStore()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const handler = new DefaultRequestHandler(card(), store, executor)
        if (req.method === 'GET' && req.url === '/agent/.well-known/agent-card.json') {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify(legacy ? legacyCard(url) : AgentCard.toJSON(await handler.getAgentCard())))
          return
        }
        if (req.method !== 'POST' || req.url !== '/agent') { res.statusCode = 404; res.end(); return }
        const body = Buffer.concat(chunks).toString('utf8')
        const out = legacy
          ? await new LegacyJsonRpcTransportHandler(handler).handle(body, new ServerCallContext({ requestedVersion: '0.3' }))
          : await new JsonRpcTransportHandler(handler).handle(body, new ServerCallContext({ requestedVersion: '1.0' }))
        if (typeof (out as AsyncGenerator)[Symbol.asyncIterator] === 'function') {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
          for await (const ev of out as AsyncGenerator) res.write(`data: ${JSON.stringify(ev)}\n\n`)
          res.end()
          return
        }
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(out))
      })().catch((err: unknown) => { res.statusCode = 500; res.end(String(err)) })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/agent`
  return { url, server, requests }
}

