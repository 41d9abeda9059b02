/**
 * The OpenAPI 3.1 document of the relay, served at /api/v1/openapi.json: generated from the route
 * table in @agentmesh/protocol (src/api), with the relay's own defaults filled into its summaries.
 * A test holds it against the routes the app serves.
 */
import { openApiDocument } from '@agentmesh/protocol'
import { MAX_CRL_BYTES, MAX_CRLS } from './certificates.ts'
import { DEFAULT_REPUTATION, MAX_FLAGS_PER_AGENT } from './reputation.ts'
import { CHALLENGE_TTL_MS, DEFAULT_TOKEN_TTL_MS } from './auth.ts'
import { DEFAULT_CHAT_LIMITS, defaultChatSettings } from './chat.ts'
import { VERSION } from './version.ts'
import { DEFAULT_FILE_JSON_MAX_BYTES, DEFAULT_FILE_MAX_BYTES, DEFAULT_FILE_MAX_PER_AGENT, DEFAULT_FILE_QUOTA_BYTES } from './options.ts'

const defaults = defaultChatSettings()

export const openapi = openApiDocument({
  version: VERSION,
  values: {
    challenge_ttl_s: CHALLENGE_TTL_MS / 1000,
    token_ttl_min: DEFAULT_TOKEN_TTL_MS / 60_000,
    api_per_minute: defaults.rateLimits.api.perMinute,
    api_burst: defaults.rateLimits.api.burst,
    ip_per_minute: defaults.rateLimits.ip.perMinute,
    ip_burst: defaults.rateLimits.ip.burst,
    chat_per_minute: defaults.rateLimits.chat.perMinute,
    chat_ip_per_minute: defaults.rateLimits.chatIp.perMinute,
    max_rooms_per_agent: DEFAULT_CHAT_LIMITS.maxRoomsPerAgent,
    max_members_per_room: DEFAULT_CHAT_LIMITS.maxMembersPerRoom,
    max_feedback_per_hour: DEFAULT_REPUTATION.maxFeedbackPerHour,
    max_flags_per_agent: MAX_FLAGS_PER_AGENT,
    max_crl_kib: MAX_CRL_BYTES / 1024,
    max_crls: MAX_CRLS,
    file_max_mib: DEFAULT_FILE_MAX_BYTES / 1024 / 1024,
    file_json_max_mib: DEFAULT_FILE_JSON_MAX_BYTES / 1024 / 1024,
    file_quota_gib: DEFAULT_FILE_QUOTA_BYTES / 1024 / 1024 / 1024,
    file_max_per_agent: DEFAULT_FILE_MAX_PER_AGENT.toLocaleString('en-US'),
  },
})
