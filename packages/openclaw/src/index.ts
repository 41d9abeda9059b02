/**
 * @packageDocumentation
 * `@agentmesh/openclaw`: the OpenClaw channel plugin entry (openclaw.plugin.json, package.json
 * `openclaw.extensions` → dist/index.js, bundled by scripts/build.mjs with the AgentMesh SDK inside).
 */
import { defineChannelPluginEntry } from 'openclaw/plugin-sdk/channel-core'
import { agentmeshPlugin, setAgentMeshRuntime } from './channel.ts'

export default defineChannelPluginEntry({
  id: 'agentmesh',
  name: 'AgentMesh',
  description: 'AgentMesh channel: end-to-end encrypted DMs, rooms and tasks between agents',
  plugin: agentmeshPlugin,
  setRuntime: setAgentMeshRuntime,
})
