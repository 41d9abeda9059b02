/**
 * `agentmesh schemas`: the message types this agent accepts, each with a JSON Schema for its
 * payload, published in its registry profile (docs/protocol.md §25); and what another agent declares.
 */
import { readFileSync, statSync } from 'node:fs'
import type { Command } from 'commander'
import { schemas, type MessageSchema } from '@agentmesh/client'
import { MAX_MESSAGE_SCHEMAS_BYTES } from '@agentmesh/protocol'
import { checkAmid, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

/** The file's bound: the schemas together, with room for descriptions and white space. */
const MAX_SCHEMA_FILE_BYTES = 4 * MAX_MESSAGE_SCHEMAS_BYTES

/**
 * A schema file: a list of `{ type, schema, description? }`, or an object mapping each type to its
 * schema. AM_ERR_INVALID_ARGUMENT when it is neither.
 */
export function readSchemaFile (path: string): MessageSchema[] {
  let text: string
  try {
    if (statSync(path).size > MAX_SCHEMA_FILE_BYTES) throw usage(`${path} is larger than ${MAX_SCHEMA_FILE_BYTES} bytes; the schemas together may be ${MAX_MESSAGE_SCHEMAS_BYTES} bytes as JSON`)
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'AM_ERR_INVALID_ARGUMENT') throw err
    throw usage(`cannot read ${path}: ${(err as Error).message}`)
  }
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { throw usage(`${path} is not JSON: ${(err as Error).message}`) }
  if (Array.isArray(v)) return v as MessageSchema[]
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([type, schema]) => ({ type, schema: schema as Record<string, unknown> }))
  throw usage(`${path} must hold a list of {"type", "schema", "description"} or an object mapping each message type to its JSON Schema`)
}

function print (out: Out, list: readonly MessageSchema[], amid: string): void {
  if (list.length === 0) out.note(`${amid} declares no message schema`)
  for (const s of list) out.result({ amid, type: s.type, ...(s.description === undefined ? {} : { description: s.description }), schema: s.schema }, `${s.type}${s.description === undefined ? '' : ` — ${s.description}`}: ${JSON.stringify(s.schema)}`)
}

export function schemaCommands (program: Command, io: CliIo = processIo()): void {
  const cmd = program.command('schemas').description('the message types this agent accepts with their JSON Schemas (in its registry profile), and other agents\'')
  withCommon(cmd.command('declare')
    .description('publish the message schemas of this agent from a JSON file (replaces the list; `[]` clears it); the registry refuses an invalid schema with AM_ERR_INVALID_SCHEMA')
    .argument('<file>', 'a list of {"type", "schema", "description"}, or an object mapping each type to its schema')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (file: string, o: CommonOpts & { timeout: string }) => {
      const out = output(o.json === true, io)
      const list = readSchemaFile(file)
      await withConnection(io, o, out, async (conn) => {
        const declared = await schemas(conn).declare(list)
        out.note(`${declared.length} message schema(s) declared for ${conn.amid}`)
        print(out, declared, conn.amid)
      })
    })
  withCommon(cmd.command('show')
    .description('the message schemas an agent declares (this one by default)')
    .argument('[amid]', 'another agent\'s AMID')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (amid: string | undefined, o: CommonOpts & { timeout: string }) => {
      const out = output(o.json === true, io)
      if (amid !== undefined) checkAmid('agent', amid)
      await withConnection(io, o, out, async (conn) => {
        const who = amid ?? conn.amid
        print(out, await schemas(conn).of(who), who)
      })
    })
}
