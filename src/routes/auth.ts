import { fromNodeHeaders } from 'better-auth/node'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CLIENT_IP_HEADER } from '../client-ip.js'
import { serverFault } from '../db/availability.js'

// Auth requests are small; anything bigger is refused with 413 before it reaches Better Auth.
const AUTH_BODY_LIMIT = 64 * 1024

/**
 * Forwards /api/auth/* to Better Auth as Web Requests. Encapsulated (not fastify-plugin) so that its raw-body parser
 * applies here only: Better Auth parses JSON and form bodies itself, and an empty JSON body must reach it as empty.
 */
export default async function authRoutes (app: FastifyInstance) {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: AUTH_BODY_LIMIT }, (_request, body, done) => {
    done(null, body)
  })

  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/api/auth/*',
    bodyLimit: AUTH_BODY_LIMIT,
    // Better Auth describes its own endpoints; src/plugins/openapi.ts merges them into our document.
    schema: { hide: true },
    async handler (request: FastifyRequest, reply: FastifyReply) {
      // The URL comes from the configured base URL, never from the client's Host header.
      const url = new URL(request.url, app.config.auth.baseURL)
      const body = Buffer.isBuffer(request.body) && request.body.length > 0 ? new Uint8Array(request.body) : undefined
      const headers = fromNodeHeaders(request.headers)
      headers.set(CLIENT_IP_HEADER, request.clientIp)
      const response = await app.auth.handler(new Request(url, { method: request.method, headers, body }))

      if (response.status >= 500) {
        // Better Auth has already logged the cause; the client gets our error body with a stable code, and a 503
        // with Retry-After when the database is away.
        const fault = await serverFault(app.pg)
        if (fault.retryAfter !== undefined) reply.header('retry-after', fault.retryAfter)
        return reply.code(fault.statusCode).send(fault.body)
      }
      reply.code(response.status)
      for (const [name, value] of response.headers) {
        if (name !== 'set-cookie' && name !== 'content-length') reply.header(name, value)
      }
      // Better Auth says when to retry in X-Retry-After; HTTP clients and proxies read Retry-After.
      if (response.status === 429) reply.header('retry-after', response.headers.get('x-retry-after') ?? '60')
      // Headers iteration joins Set-Cookie values with commas; each cookie needs its own header.
      const cookies = response.headers.getSetCookie()
      if (cookies.length > 0) reply.header('set-cookie', cookies)
      return reply.send(response.body === null ? null : Buffer.from(await response.arrayBuffer()))
    }
  })
}
