/**
 * The OpenClaw channel `agentmesh` (openclaw@2026.9.6's plugin SDK): accounts are AgentMesh
 * identities; `gateway.startAccount` runs the account's connection (bridge.ts) until the gateway
 * aborts it; each delivery is one inbound turn through the runtime's ingress, context and dispatch
 * (a session per peer, room or task); the turn's final reply goes back as an E2EE message; the
 * `message` and `outbound` adapters send what the agent sends on its own (the shared message tool).
 */
import { buildChannelOutboundSessionRoute, createChatChannelPlugin } from 'openclaw/plugin-sdk/channel-core'
import { resolveChannelInboundRouteEnvelope } from 'openclaw/plugin-sdk/channel-inbound'
import { createMessageReceiptFromOutboundResults, defineChannelMessageAdapter } from 'openclaw/plugin-sdk/channel-outbound'
import { isReplyPayloadTerminalContent } from 'openclaw/plugin-sdk/reply-payload'
import { runAccount, sendText, type Deliver, type KnockApproval } from './bridge.ts'
import { CHANNEL_ID, DEFAULT_ACCOUNT_ID, listAccountIds, looksLikeTarget, parseTarget, resolveAccount, type InboundTurn, type ResolvedAccount } from './mapping.ts'

/* eslint-disable @typescript-eslint/no-explicit-any -- the SDK's runtime objects are typed by the gateway */
let pluginRuntime: any
/** Kept by the entry's setRuntime: the gateway's plugin runtime. */
export function setAgentMeshRuntime (runtime: unknown): void { pluginRuntime = runtime }

const meta = {
  id: CHANNEL_ID,
  label: 'AgentMesh',
  selectionLabel: 'AgentMesh (agent-to-agent messaging)',
  blurb: 'Give the agent an AgentMesh identity: end-to-end encrypted DMs, rooms and tasks with other agents.',
  order: 80,
}

/** What the dispatch of one turn needs from the gateway. */
export interface TurnContext {
  cfg: unknown
  account: ResolvedAccount
  channelRuntime: any
}

/**
 * The arguments of the inbound route and context for a turn (pure: unit-tested): the peer is the
 * conversation (a DM peer, a room, a task), so each has its own session.
 */
export function routeArgs (cfg: unknown, account: ResolvedAccount, turn: InboundTurn): Record<string, unknown> {
  return {
    cfg,
    channel: CHANNEL_ID,
    accountId: account.accountId,
    peer: { kind: turn.kind, id: turn.conversationId },
    dmScope: 'per-account-channel-peer',
  }
}

export function contextArgs (account: ResolvedAccount, turn: InboundTurn, route: { agentId: string, accountId?: string, dmScope?: string, sessionKey: string }, body: string, ingress: unknown): Record<string, unknown> {
  return {
    channel: CHANNEL_ID,
    accountId: route.accountId ?? account.accountId,
    messageId: turn.messageId,
    messageIdFull: turn.messageId,
    timestamp: turn.timestamp,
    from: `${CHANNEL_ID}:${turn.senderId}`,
    sender: { id: turn.senderId, name: turn.senderName },
    conversation: { kind: turn.kind, id: turn.conversationId, label: turn.label },
    route: { agentId: route.agentId, dmScope: route.dmScope, accountId: route.accountId, routeSessionKey: route.sessionKey, dispatchSessionKey: route.sessionKey },
    reply: { to: turn.target, originatingTo: turn.target },
    // the agent reads the fenced text (a peer's words are data); commands are never run from a peer
    message: { body, bodyForAgent: turn.body, rawBody: turn.rawText, commandBody: turn.rawText },
    channelIngress: ingress,
    extra: { CommandInterpretationSuppressed: true },
  }
}

/** Runs one OpenClaw turn for an AgentMesh delivery; the final reply goes out through `deliver`. */
export async function dispatchTurn (tc: TurnContext, turn: InboundTurn, deliver: Deliver): Promise<void> {
  const { cfg, account, channelRuntime } = tc
  const { route, buildEnvelope } = resolveChannelInboundRouteEnvelope(routeArgs(cfg, account, turn))
  const ingress = await channelRuntime.inbound.ingress.resolveStable({
    channelId: CHANNEL_ID,
    accountId: account.accountId,
    cfg,
    identity: { key: 'sender', entryIdPrefix: 'agentmesh-entry' },
    subject: { stableId: turn.senderId },
    conversation: { kind: turn.kind, id: turn.conversationId },
    contextBinding: { agentId: route.agentId, sessionKey: route.sessionKey, messageId: turn.messageId, inboundEventKind: 'user_request' },
    // who may write is AgentMesh's decision (the KNOCK policy in the home, before anything reaches here)
    dmPolicy: 'open',
    groupPolicy: 'open',
    allowFrom: ['*'],
    groupAllowFrom: ['*'],
  })
  if (ingress?.ingress?.admission !== 'dispatch') throw new Error(`OpenClaw ingress did not admit the turn (${String(ingress?.ingress?.admission)})`)
  const body = buildEnvelope({ channel: 'AgentMesh', from: turn.senderName, timestamp: turn.timestamp, body: turn.body })
  const ctxPayload = channelRuntime.inbound.buildContext(contextArgs(account, turn, route, body, ingress))
  let failure: unknown
  const dispatch = await channelRuntime.inbound.dispatch({
    cfg,
    channel: CHANNEL_ID,
    accountId: account.accountId,
    route: { agentId: route.agentId, dmScope: route.dmScope, sessionKey: route.sessionKey },
    ctxPayload,
    delivery: {
      deliver: async (payload: { text?: string }, info: { kind: string }) => {
        if (info.kind !== 'final' || !isReplyPayloadTerminalContent(payload)) return
        const text = typeof payload.text === 'string' ? payload.text.trim() : ''
        if (text === '') return
        const r = await deliver(text)
        return { messageIds: [r.messageId], visibleReplySent: true }
      },
      onError: (error: unknown) => { failure = error },
    },
    replyOptions: { sourceReplyDeliveryMode: 'automatic' },
    replyPipeline: {},
  })
  if (dispatch?.admission?.kind !== 'dispatch') throw new Error(`OpenClaw declined the turn (${String(dispatch?.admission?.kind)})`)
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure))
}

/**
 * Held knocks through OpenClaw's pairing flow: a held knock becomes a pairing request for the peer's
 * AMID (`openclaw pairing list agentmesh`, the Control UI's DM access requests); approving it
 * (`openclaw pairing approve agentmesh <CODE>`) puts the AMID in the channel's allow-from store, and
 * the plugin then accepts the peer's knock. The knock's summary is the peer's text: shown as such.
 */
export function pairingApproval (channelRuntime: any, accountId: string): KnockApproval | undefined {
  const pairing = channelRuntime?.pairing
  if (typeof pairing?.upsertPairingRequest !== 'function' || typeof pairing?.readAllowFromStore !== 'function') return undefined
  return {
    request: async (k) => {
      await pairing.upsertPairingRequest({
        channel: CHANNEL_ID,
        id: k.from,
        accountId,
        meta: { intent: k.intent.category, summary: `[peer text] ${String(k.intent.summary).slice(0, 200)}`, tier: k.tier, knock: k.id },
      })
    },
    approved: async () => await pairing.readAllowFromStore({ channel: CHANNEL_ID, accountId }) as string[],
  }
}

async function startAccount (ctx: any): Promise<void> {
  const account: ResolvedAccount = ctx.account
  if (!account.configured) throw new Error(`channels.agentmesh account "${account.accountId}" has no home: set it to a directory made by \`agentmesh init\``)
  ctx.setStatus({ accountId: account.accountId, running: true, lifecycle: 'starting', configured: true, enabled: account.enabled })
  const channelRuntime = ctx.channelRuntime ?? pluginRuntime?.channel
  const log = (line: string): void => { (ctx.log?.info ?? ctx.runtime?.log ?? console.log)(line) }
  const approval = pairingApproval(channelRuntime, account.accountId)
  try {
    await runAccount({
      account,
      signal: ctx.abortSignal,
      log,
      ...(approval === undefined ? {} : { approval }),
      onConnected: () => { ctx.setStatus({ accountId: account.accountId, running: true, connected: true, lifecycle: 'ready', lastConnectedAt: Date.now(), lastError: null }) },
      dispatch: async (turn, deliver) => { await dispatchTurn({ cfg: ctx.cfg, account, channelRuntime }, turn, deliver) },
    })
  } finally {
    ctx.setStatus({ accountId: account.accountId, running: false, connected: false, lifecycle: 'stopped' })
  }
}

const messageAdapter = defineChannelMessageAdapter({
  id: CHANNEL_ID,
  durableFinal: { capabilities: { text: true } },
  send: {
    text: async (ctx: { accountId?: string | null, to: string, text: string }) => {
      const r = await sendText(ctx.accountId ?? DEFAULT_ACCOUNT_ID, ctx.to, ctx.text)
      return {
        messageId: r.messageId,
        receipt: createMessageReceiptFromOutboundResults({ results: [{ channel: CHANNEL_ID, messageId: r.messageId }], kind: 'text' }),
      }
    },
  },
})

export const agentmeshPlugin = createChatChannelPlugin({
  base: {
    id: CHANNEL_ID,
    meta,
    capabilities: { chatTypes: ['direct', 'group'] },
    reload: { configPrefixes: [`channels.${CHANNEL_ID}`] },
    config: {
      listAccountIds: (cfg: unknown) => listAccountIds(cfg),
      resolveAccount: (cfg: unknown, accountId?: string | null) => resolveAccount(cfg, accountId),
      defaultAccountId: () => DEFAULT_ACCOUNT_ID,
      isConfigured: (account: ResolvedAccount) => account.configured,
      isEnabled: (account: ResolvedAccount) => account.enabled,
      inspectAccount: (cfg: unknown, accountId?: string | null) => {
        const a = resolveAccount(cfg, accountId)
        return { enabled: a.enabled, configured: a.configured }
      },
    },
    messaging: {
      normalizeTarget: (raw: string) => { try { return parseTarget(raw) } catch { return undefined } },
      inferTargetChatType: ({ to }: { to?: string } = {}) => (typeof to === 'string' && to.replace(/^agentmesh:/i, '').startsWith('#') ? 'group' : 'direct'),
      targetResolver: { looksLikeId: (raw: string) => looksLikeTarget(raw), hint: '<AMID | @handle | #room>' },
      resolveOutboundSessionRoute: ({ cfg, agentId, accountId, target }: { cfg: unknown, agentId: string, accountId?: string, target: string }) => {
        let to: string
        try { to = parseTarget(target) } catch { return null }
        const kind = to.startsWith('#') ? 'group' : 'direct'
        return buildChannelOutboundSessionRoute({
          cfg, agentId, channel: CHANNEL_ID, accountId, recipientSessionExact: true,
          peer: { kind, id: to }, chatType: kind, from: `${CHANNEL_ID}:${accountId ?? DEFAULT_ACCOUNT_ID}`, to,
        })
      },
    },
    gateway: { startAccount },
    message: messageAdapter,
  },
  // held knocks are pairing requests (above); the code is not sent to the peer: the owner approves from the list
  pairing: {
    text: {
      idLabel: 'AgentMesh AMID',
      message: 'Your knock is waiting for the owner of this agent.',
      notify: async () => {},
    },
  },
  outbound: {
    base: { deliveryMode: 'direct' },
    attachedResults: {
      channel: CHANNEL_ID,
      sendText: async ({ to, text, accountId }: { to: string, text: string, accountId?: string | null }) => await sendText(accountId ?? DEFAULT_ACCOUNT_ID, to, text),
    },
  },
})
