import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { fastifyRequestContext } from '@fastify/request-context'
import fp from 'fastify-plugin'

/** Fly's proxy gives every request an id in this header. */
export const FLY_REQUEST_ID_HEADER = 'fly-request-id'
export const REQUEST_ID_HEADER = 'x-request-id'

// Fly's ids are short and plain (a ULID and a region, like 01J0ABCDEFGHJKMNPQRSTVWXYZ-ams). Anything else is not
// copied into logs and headers: a client could send any text there when the service is reached without Fly's proxy.
const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/

/** Fastify's genReqId: Fly's request id when it is well-formed, a random UUID otherwise. */
export function requestId (request: IncomingMessage): string {
  const fly = request.headers[FLY_REQUEST_ID_HEADER]
  return typeof fly === 'string' && WELL_FORMED.test(fly) ? fly : randomUUID()
}

/**
 * The Fastify constructor's options for request ids: the header is read by `requestId`, not by Fastify, which would
 * take any value. (The log label stays Fastify's default, reqId; its top-level option is deprecated.)
 */
export const requestIdOptions = {
  requestIdHeader: false,
  genReqId: requestId
} as const

/**
 * Every answer says its request id, so a user's report can be found in the logs. Code that runs for a request without
 * being handed it (Better Auth, the mailer, the audit writer) logs through `requestLog()` (../logger.ts), which
 * @fastify/request-context keeps across the request's async work.
 */
export default fp(async function requestIdPlugin (app) {
  await app.register(fastifyRequestContext, { defaultStoreValues: (request) => ({ log: request.log }) })
  app.addHook('onRequest', function sayRequestId (request, reply, done) {
    reply.header(REQUEST_ID_HEADER, request.id)
    done()
  })
}, { name: 'request-id', fastify: '5.x' })
