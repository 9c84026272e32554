import fp from 'fastify-plugin'
import { clientErrorHandler } from './client-errors.js'
import { serverFault } from './db/availability.js'
import { STATUS_CODES, type Server, type ServerOptions } from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyError, type FastifyHttpOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import auditRetentionPlugin from './plugins/audit-retention.js'
import authPlugin from './plugins/auth.js'
import clientIpPlugin from './plugins/client-ip.js'
import corsPlugin from './plugins/cors.js'
import dbPlugin from './plugins/db.js'
import envPlugin, { type EnvPluginOptions } from './plugins/env.js'
import mailerPlugin from './plugins/mailer.js'
import metricsPlugin from './plugins/metrics.js'
import openapiPlugin from './plugins/openapi.js'
import requestsInFlightPlugin from './plugins/requests-in-flight.js'
import requestIdPlugin, { requestIdOptions } from './plugins/request-id.js'
import routeRateLimitPlugin from './plugins/route-rate-limit.js'
import securityHeadersPlugin from './plugins/security-headers.js'
import auditRoutes from './routes/audit.js'
import authRoutes from './routes/auth.js'
import healthRoutes from './routes/health.js'
import meRoutes from './routes/me.js'

/** The application, as a plugin: configuration, then infrastructure, then routes. */
export const app = fp(async function app (fastify: FastifyInstance, opts: EnvPluginOptions) {
  await fastify.register(requestIdPlugin)
  await fastify.register(envPlugin, opts)
  await fastify.register(securityHeadersPlugin)
  await fastify.register(clientIpPlugin)
  await fastify.register(dbPlugin)
  await fastify.register(corsPlugin)
  await fastify.register(mailerPlugin)
  await fastify.register(authPlugin)
  // After what requests use: on close, requests whose clients have gone finish before auth, mail and the pool close.
  await fastify.register(requestsInFlightPlugin)
  await fastify.register(routeRateLimitPlugin)
  await fastify.register(auditRetentionPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(openapiPlugin)

  fastify.setErrorHandler(async function errorHandler (error: FastifyError, request, reply) {
    if (isInvalidValue(error)) {
      // A value Better Auth did not validate and PostgreSQL refused (wrong type, out of range, null, duplicate).
      request.log.info({ err: { code: error.code, message: error.message } }, 'request refused: invalid value')
      return reply.code(400).send({ code: 'INVALID_VALUE', message: 'A value in the request is not acceptable.' })
    }
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
      const fault = await serverFault(fastify.pg, error)
      if (fault.retryAfter !== undefined) reply.header('retry-after', fault.retryAfter)
      return reply.code(fault.statusCode).send(fault.body)
    }
    return reply.code(statusCode).send({ code: error.code ?? 'BAD_REQUEST', message: error.message })
  })
  fastify.setNotFoundHandler(function notFound (request, reply) {
    return reply.code(404).send({ code: 'NOT_FOUND', message: `${request.method} ${request.url.split('?')[0]} does not exist` })
  })

  await fastify.register(healthRoutes)
  await fastify.register(authRoutes)
  await fastify.register(meRoutes)
  await fastify.register(auditRoutes)
}, { name: 'pond-backend', fastify: '5.x' })

function refuseConnection (socket: Duplex, status: number, code: string, message: string) {
  const body = JSON.stringify({ code, message })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

/** PostgreSQL's data exceptions (class 22) and integrity violations (class 23), and malformed URI text. */
function isInvalidValue (error: Error & { code?: unknown }): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code)) return true
    if (current instanceof URIError) return true
  }
  return false
}

// Server limits in one place: slow or huge requests are cut off instead of held.
export const serverOptions = {
  bodyLimit: 1024 * 1024,
  connectionTimeout: 60_000,
  requestTimeout: 30_000,
  // Longer than Fly's proxy idle timeout (60 s), so the proxy, not us, closes idle keep-alive connections.
  keepAliveTimeout: 75_000,
  return503OnClosing: true,
  // A path parameter (a provider's name, a reset token) longer than this matches no route: 404, before any handler.
  routerOptions: { maxParamLength: 100 },
  // Headers must be complete within 10 s (slow-header clients); Node checks the timeouts every second.
  // No Host header needed: every URL we build comes from BETTER_AUTH_URL.
  http: { headersTimeout: 10_000, connectionsCheckingInterval: 1_000, requireHostHeader: false },
  clientErrorHandler
} satisfies FastifyHttpOptions<Server>

export interface BuildAppOptions extends EnvPluginOptions {
  logger?: FastifyServerOptions['logger']
  /** Replaces some of serverOptions (tests shorten the timeouts); `http` is merged. */
  server?: Omit<Partial<typeof serverOptions>, 'http'> & { http?: ServerOptions }
}

/** Builds the whole service without listening: the server entry point and the tests both start here. */
export async function buildApp ({ logger = false, server, ...envOptions }: BuildAppOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify({ ...serverOptions, ...server, http: { ...serverOptions.http, ...server?.http }, ...requestIdOptions, logger })
  // This API has no CONNECT and no websockets; without these listeners Node closes such connections with no answer.
  fastify.server.on('connect', (_request, socket: Duplex) => refuseConnection(socket, 405, 'METHOD_NOT_ALLOWED', 'CONNECT is not supported.'))
  fastify.server.on('upgrade', (_request, socket: Duplex) => refuseConnection(socket, 400, 'UPGRADE_NOT_SUPPORTED', 'Protocol upgrades are not supported.'))
  // Node answers an unknown Expect header itself, with an empty 417; answer it in our JSON shape instead.
  fastify.server.on('checkExpectation', (_request, response) => {
    response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close' })
      .end(JSON.stringify({ code: 'EXPECTATION_FAILED', message: 'Only "Expect: 100-continue" is supported.' }))
  })
  try {
    await fastify.register(app, envOptions)
    await fastify.ready()
  } catch (error) {
    await fastify.close().catch(() => {})
    throw error
  }
  return fastify
}
