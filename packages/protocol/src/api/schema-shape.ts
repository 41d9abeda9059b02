/**
 * The shape bounds of a declared message schema (docs/protocol.md §25), checked before any
 * validator compiles it: compiling costs about a millisecond per subschema, so a schema's nesting
 * and node count are bounded as well as its size, and it may refer only to itself.
 */

/** Deepest nesting of objects and arrays in a declared schema. */
export const MAX_SCHEMA_DEPTH = 32
/** Objects and arrays in a declared schema at most. */
export const MAX_SCHEMA_NODES = 512

const REF_KEYS = new Set(['$ref', '$dynamicRef', '$recursiveRef'])

/** What is wrong with a schema's shape (one sentence), or undefined when it is within the bounds. */
export function schemaShapeError (schema: unknown): string | undefined {
  let nodes = 0
  const walk = (v: unknown, depth: number): string | undefined => {
    if (v === null || typeof v !== 'object') return undefined
    if (depth > MAX_SCHEMA_DEPTH) return `it nests deeper than ${MAX_SCHEMA_DEPTH} levels`
    if (++nodes > MAX_SCHEMA_NODES) return `it has more than ${MAX_SCHEMA_NODES} objects and arrays`
    for (const [k, x] of Object.entries(v)) {
      if (REF_KEYS.has(k) && !Array.isArray(v) && (typeof x !== 'string' || !x.startsWith('#'))) {
        return `${k} ${JSON.stringify(x).slice(0, 80)} refers outside the schema; only references inside it ("#…") are allowed`
      }
      const e = walk(x, depth + 1)
      if (e !== undefined) return e
    }
    return undefined
  }
  return walk(schema, 1)
}
