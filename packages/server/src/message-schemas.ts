/**
 * Message schemas in a registry profile (docs/protocol.md §25): the message types an agent
 * accepts, each with a JSON Schema (draft 2020-12) for its payload. The registry checks that each
 * is a schema, within its bounds, before storing it; the agents validate payloads (the client).
 */
import Ajv2020 from 'ajv/dist/2020.js'
import { AgentMeshError, ErrorCode, MAX_MESSAGE_SCHEMA_BYTES, MAX_MESSAGE_SCHEMAS_BYTES, schemaShapeError, type MessageSchema } from '@agentmesh/protocol'

// one instance, made on first use (its meta-schemas cost a few ms): a compiled schema is removed
// again at once, so nothing accumulates in it; `addUsedSchema: false` keeps a schema's own `$id`
// from being registered in it
let instance: InstanceType<typeof Ajv2020.default> | undefined
const ajvOf = (): InstanceType<typeof Ajv2020.default> => (instance ??= new Ajv2020.default({ strict: false, allErrors: false, addUsedSchema: false }))

/** Envelope types no schema may claim: the protocol's own (encryption, knocks, notices). */
export function reservedType (type: string): boolean {
  return type.startsWith('e2ee') || type.startsWith('agentmesh.')
}

/**
 * Checks a profile's declared message schemas: bounded (count by the body schema, each and all
 * by their JSON size, each by its shape: schemaShapeError), one per type, no protocol type, each
 * valid against the draft 2020-12 meta-schema. Throws
 * AM_ERR_INVALID_SCHEMA naming the type and what is wrong.
 */
export function checkMessageSchemas (list: readonly MessageSchema[]): void {
  const ajv = ajvOf()
  const seen = new Set<string>()
  let total = 0
  for (const [i, s] of list.entries()) {
    const at = `schemas[${i}] (type "${s.type}")`
    if (seen.has(s.type)) throw new AgentMeshError(ErrorCode.InvalidSchema, `${at}: the type is declared twice; declare each message type once`)
    seen.add(s.type)
    if (reservedType(s.type)) throw new AgentMeshError(ErrorCode.InvalidSchema, `${at}: e2ee* and agentmesh.* are the protocol's own types; name the message type otherwise`)
    const bytes = Buffer.byteLength(JSON.stringify(s.schema))
    if (bytes > MAX_MESSAGE_SCHEMA_BYTES) throw new AgentMeshError(ErrorCode.InvalidSchema, `${at}: the schema is ${bytes} bytes as JSON, more than ${MAX_MESSAGE_SCHEMA_BYTES}; make it smaller`)
    total += bytes
    if (total > MAX_MESSAGE_SCHEMAS_BYTES) throw new AgentMeshError(ErrorCode.InvalidSchema, `the schemas are more than ${MAX_MESSAGE_SCHEMAS_BYTES} bytes as JSON together; declare fewer or smaller ones`)
    const shape = schemaShapeError(s.schema)
    if (shape !== undefined) throw new AgentMeshError(ErrorCode.InvalidSchema, `${at}: ${shape}`)
    // checked against the draft 2020-12 meta-schema, not compiled: compiling costs about a
    // millisecond per subschema, which the relay does not spend on agents' schemas (the SDK compiles
    // its own before it declares them, and each receiver its own)
    if (ajv.validateSchema(s.schema) !== true) {
      throw new AgentMeshError(ErrorCode.InvalidSchema, `${at} is not a valid JSON Schema (draft 2020-12): ${ajv.errorsText(ajv.errors, { dataVar: 'schema' }).slice(0, 300)}`)
    }
  }
}
