/**
 * A REST route's inputs and answer as the route table of @agentmesh/protocol (src/api) types them:
 * queries and path parameters checked against the route's schemas (AM_ERR_INVALID_ARGUMENT naming
 * the field), success answers typed by its response schema. Shared by REST v1 (api-v1.ts) and the
 * registry routes (registry.ts, reputation.ts).
 */
import type { Context } from 'hono'
import type { TObject } from '@sinclair/typebox'
import { checkValue, typedQuery, type ApiAnswer, type RouteName, type Static } from '@agentmesh/protocol'

/** The request's query as its route's schema types it, checked. */
export function queryOf<T extends TObject> (c: Context, schema: T): Static<T> {
  return checkValue(schema, typedQuery(schema, c.req.query()), 'query')
}

/** The request's path parameters as its route's schema types them, checked. */
export function paramsOf<T extends TObject> (c: Context, schema: T): Static<T> {
  return checkValue(schema, typedQuery(schema, c.req.param() as Record<string, string>), 'path')
}

/** Route `route`'s success answer, typed by the route table. */
export function answer<N extends RouteName> (c: Context, _route: N, body: ApiAnswer<N>, status: 200 | 201 = 200): Response {
  return c.json(body, status)
}
