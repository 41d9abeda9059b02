/**
 * A stand-in for the model, outside the machine in real use: a small OpenAI-compatible server on
 * 127.0.0.1 speaking chat completions (JSON and the streamed `text/event-stream` form). Its answer
 * is `reply(lastUserText, allText)` (all text: every message's, in order); every request is kept for
 * the test to read.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeModel {
  url: string
  /** the chat-completion requests received, in order */
  requests: Array<{ messages: Array<{ role: string, content: unknown }>, stream: boolean }>
  close: () => Promise<void>
}

const MAX_BODY = 8 * 1024 * 1024

function textOf (content: unknown): string {
  if (typeof content === 'string') return content
  if (Array.isArray(content)) return content.map(p => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string') ? (p as { text: string }).text : '').join('')
  return ''
}

async function body (req: IncomingMessage): Promise<string> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const c of req) {
    size += (c as Buffer).length
    if (size > MAX_BODY) throw new Error('body too large')
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export async function startFakeModel (reply: (lastUserText: string, allText: string) => string, modelId = 'fake-model'): Promise<FakeModel> {
  const requests: FakeModel['requests'] = []
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '').split('?')[0]!
      if (req.method === 'GET' && path.endsWith('/models')) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ object: 'list', data: [{ id: modelId, object: 'model', created: 0, owned_by: 'test' }] }))
        return
      }
      if (req.method !== 'POST' || !path.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}`, type: 'not_found' } }))
        return
      }
      const parsed = JSON.parse(await body(req)) as { messages?: Array<{ role: string, content: unknown }>, stream?: boolean }
      const messages = parsed.messages ?? []
      const stream = parsed.stream === true
      requests.push({ messages, stream })
      const lastUser = [...messages].reverse().find(m => m.role === 'user')
      const text = reply(textOf(lastUser?.content), messages.map(m => textOf(m.content)).join('\n'))
      const id = `chatcmpl-${requests.length}`
      const created = Math.floor(Date.now() / 1000)
      const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ id, object: 'chat.completion', created, model: modelId, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage }))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
      const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}): string =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: modelId, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`
      res.write(chunk({ role: 'assistant', content: '' }, null))
      res.write(chunk({ content: text }, null))
      res.write(chunk({}, 'stop', { usage }))
      res.end('data: [DONE]\n\n')
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: err.message, type: 'invalid_request_error' } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) },
  }
}
