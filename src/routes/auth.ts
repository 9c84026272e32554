import { STATUS_CODES } from 'node:http'
import { fromNodeHeaders } from 'better-auth/node'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AUTH_PREFIX, authEndpoints } from '../auth/endpoints.js'
import { RESET_LINK_PATH, SOCIAL_CALLBACK_PATH } from '../auth/create-auth.js'
import { HASHING_BUSY, HASHING_RETRY_AFTER_SECONDS } from '../auth/password-hashing.js'
import { carriesBadText } from '../auth/request-text.js'
import type { ReadOptions } from '../auth/session-reader.js'
import { CLIENT_IP_HEADER } from '../client-ip.js'
import { serverFault } from '../db/availability.js'
import { ROUTE_RATE_LIMIT } from '../plugins/route-rate-limit.js'

// Auth requests are small; anything bigger is refused with 413 before it reaches Better Auth.
const AUTH_BODY_LIMIT = 64 * 1024

/**
 * Forwards Better Auth's endpoints under /api/auth to it as Web Requests. Encapsulated (not fastify-plugin) so that its raw-body parser
 * applies here only: Better Auth parses JSON and form bodies itself, and an empty JSON body must reach it as empty.
 */
export default async function authRoutes (app: FastifyInstance) {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: AUTH_BODY_LIMIT }, (_request, body, done) => {
    done(null, body)
  })

  // Exactly Better Auth's endpoints, so that any other path under /api/auth is our JSON 404 and never reaches Better
  // Auth, whose rate limiter would store a counter keyed on it (a long random path even answered 500).
  const providers = new Set(Object.keys(app.config.auth.socialProviders))
  for (const { path, methods: all } of authEndpoints(app.auth)) {
    const methods = path === '/get-session' ? all.filter((method) => method !== 'GET') : all // GET: below
    if (methods.length === 0) continue
    app.route({
      method: methods,
      url: AUTH_PREFIX + path,
      bodyLimit: AUTH_BODY_LIMIT,
      // Better Auth describes its own endpoints; src/plugins/openapi.ts merges them into our document.
      schema: { hide: true },
      // Each reset token is a path of its own to Better Auth's limiter; it counts none of them (RATE_LIMITS), we do.
      config: path === RESET_LINK_PATH ? { rateLimit: ROUTE_RATE_LIMIT } : {},
      handler: path === SOCIAL_CALLBACK_PATH
        ? async function socialCallback (request, reply) {
          // Only a configured provider's callback exists.
          if (!providers.has((request.params as { id: string }).id)) return reply.callNotFound()
          return await forwardToBetterAuth(request, reply)
        }
        : forwardToBetterAuth
    })
  }

  // Every page checks the session: answered from one query when Better Auth would only read (see
  // src/auth/session-reader.ts), by Better Auth itself when it would write (refresh, clean-up).
  app.get(AUTH_PREFIX + '/get-session', { schema: { hide: true }, config: { rateLimit: ROUTE_RATE_LIMIT } }, async function getSession (request, reply) {
    const query = sessionQuery(request.query as Record<string, unknown>)
    const read = query === undefined ? undefined : await app.readSession(request.headers.cookie, query)
    if (read === undefined || read.kind === 'ask-better-auth') return await forwardToBetterAuth(request, reply)
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').type('application/json')
      .send(read.kind === 'valid' ? JSON.stringify(read.value) : 'null')
  })

  async function forwardToBetterAuth (request: FastifyRequest, reply: FastifyReply) {
    // The URL comes from the configured base URL, never from the client's Host header.
    const url = new URL(request.url, app.config.auth.baseURL)
    const raw = Buffer.isBuffer(request.body) && request.body.length > 0 ? request.body : undefined
    if (carriesBadText(url, request.headers['content-type'], raw)) {
      return reply.code(400).send({ code: 'INVALID_CHARACTER', message: 'Text in the request contains a NUL character or invalid Unicode.' })
    }
    const body = raw === undefined ? undefined : new Uint8Array(raw)
    const headers = fromNodeHeaders(request.headers)
    headers.set(CLIENT_IP_HEADER, request.clientIp)
    const response = await app.auth.handler(new Request(url, { method: request.method, headers, body }))

    if (response.status === 503 && await isHashingBusy(response)) {
      // Too many password hashes queued (src/auth/password-hashing.ts): a clear, retryable answer.
      return reply.code(503).header('retry-after', HASHING_RETRY_AFTER_SECONDS).send(HASHING_BUSY)
    }
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
    // Better Auth's limiter says when to retry in X-Retry-After; HTTP clients and proxies read Retry-After (which
    // a spent hashing share sets itself).
    if (response.status === 429) reply.header('retry-after', response.headers.get('retry-after') ?? response.headers.get('x-retry-after') ?? '60')
    // Headers iteration joins Set-Cookie values with commas; each cookie needs its own header.
    const cookies = response.headers.getSetCookie()
    if (cookies.length > 0) reply.header('set-cookie', cookies)
    const payload = response.body === null ? null : Buffer.from(await response.arrayBuffer())
    if (response.status >= 400) {
      const error = errorBody(response.status, payload)
      return Buffer.isBuffer(error) ? reply.send(error) : reply.type('application/json; charset=utf-8').send(error)
    }
    return reply.send(payload)
  }
}

/**
 * get-session's options as Better Auth reads them (zod's coerce: any non-empty value is true), or undefined for a
 * query it should see itself (other or repeated parameters).
 */
function sessionQuery (query: Record<string, unknown>): ReadOptions | undefined {
  let disableRefresh = false
  for (const [name, value] of Object.entries(query)) {
    if (typeof value !== 'string' || (name !== 'disableRefresh' && name !== 'disableCookieCache')) return undefined
    if (name === 'disableRefresh') disableRefresh = value !== ''
  }
  return { disableRefresh }
}

async function isHashingBusy (response: Response): Promise<boolean> {
  const body = await response.clone().json().catch(() => null) as { code?: unknown } | null
  return body?.code === HASHING_BUSY.code
}

/**
 * Every error answer is JSON with a stable `code`. Better Auth's usually are; some have only a message, or no body
 * at all (an unknown path's 404, a missing session's 401): those get a code named after the status.
 */
function errorBody (status: number, payload: Buffer | null): Buffer | { code: string, message: string } {
  let parsed: unknown
  try {
    parsed = payload === null || payload.length === 0 ? null : JSON.parse(payload.toString('utf8'))
  } catch {
    parsed = null
  }
  const body = typeof parsed === 'object' && parsed !== null ? parsed as { code?: unknown, message?: unknown } : {}
  if (typeof body.code === 'string' && body.code !== '') return payload!
  const statusText = STATUS_CODES[status] ?? 'Error'
  return {
    ...body,
    code: statusText.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_|_$/g, ''),
    message: typeof body.message === 'string' && body.message !== '' ? body.message : statusText
  }
}
