import { createServer, type Server } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AUTH_PREFIX } from '../auth/endpoints.js'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics, when METRICS_PORT is set: the registry and the server that exposes it on that port. */
    metrics?: { registry: Registry, server: Server }
  }
}

export const METRICS_PREFIX = 'pond_'
export const METRICS_PATH = '/metrics'
/** The route label of requests no route matched: their paths are whatever clients send, so they share one label. */
export const UNMATCHED_ROUTE = 'unmatched'


type HistogramChild = ReturnType<Histogram<string>['labels']>

/**
 * Prometheus metrics on their own port (METRICS_PORT, where Fly's scraper reads them), never on the public one.
 * Without METRICS_PORT nothing is collected: no hook runs, no registry exists.
 */
export default fp(async function metricsPlugin (app) {
  const port = app.config.metricsPort
  if (port === undefined) return

  // One registry per app: tests build many apps in one process, and the global registry refuses duplicate names.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX })

  const requestDuration = new Histogram({
    name: `${METRICS_PREFIX}http_request_duration_seconds`,
    help: 'HTTP requests by method, route template and status code: duration in seconds (the _count is the request count).',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  const signUps = new Counter({
    name: `${METRICS_PREFIX}auth_sign_ups_total`,
    help: 'Email sign-ups Better Auth accepted.',
    registers: [registry]
  })
  const signIns = new Counter({
    name: `${METRICS_PREFIX}auth_sign_ins_total`,
    help: 'Sign-in attempts by method (email, social, two_factor) and outcome (succeeded, failed, two_factor_required).',
    labelNames: ['method', 'outcome'],
    registers: [registry]
  })
  const rateLimited = new Counter({
    name: `${METRICS_PREFIX}rate_limited_requests_total`,
    help: 'Requests refused with 429 Too Many Requests.',
    registers: [registry]
  })
  const passwordResets = new Counter({
    name: `${METRICS_PREFIX}auth_password_resets_total`,
    help: 'Password resets by stage (requested, completed).',
    labelNames: ['stage'],
    registers: [registry]
  })
  const pool = app.pg
  for (const [name, help, read] of [
    ['db_pool_connections_total', 'Connections the database pool holds (idle and in use).', () => pool.totalCount],
    ['db_pool_connections_idle', 'Idle connections in the database pool.', () => pool.idleCount],
    ['db_pool_requests_waiting', 'Queries waiting for a database connection.', () => pool.waitingCount]
  ] as const) {
    new Gauge({ name: `${METRICS_PREFIX}${name}`, help, registers: [registry], collect () { this.set(read()) } })
  }

  // Every label set starts at 0, so a rate or an alert works before the first event.
  const signInLabels = {} as Record<SignInMethod, Record<SignInOutcome, { method: SignInMethod, outcome: SignInOutcome }>>
  for (const method of ['email', 'social', 'two_factor'] as const) {
    signInLabels[method] = {} as Record<SignInOutcome, { method: SignInMethod, outcome: SignInOutcome }>
    for (const outcome of ['succeeded', 'failed', 'two_factor_required'] as const) {
      if (outcome === 'two_factor_required' && method === 'two_factor') continue
      signInLabels[method][outcome] = Object.freeze({ method, outcome })
      signIns.inc(signInLabels[method][outcome], 0)
    }
  }
  const resetRequested = Object.freeze({ stage: 'requested' })
  const resetCompleted = Object.freeze({ stage: 'completed' })
  passwordResets.inc(resetRequested, 0)
  passwordResets.inc(resetCompleted, 0)
  signUps.inc(0)
  rateLimited.inc(0)

  // The per-request work: a few map lookups and one histogram observation. Children are cached per label set, so
  // prom-client does not validate and build label objects on every request.
  const children = new Map<string, Map<string, Map<number, HistogramChild>>>()
  function child (route: string, method: string, status: number): HistogramChild {
    let byMethod = children.get(route)
    if (byMethod === undefined) children.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let found = byStatus.get(status)
    if (found === undefined) byStatus.set(status, found = requestDuration.labels(method, route, String(status)))
    return found
  }

  app.addHook('onResponse', function recordRequest (request, reply, done) {
    const template = request.routeOptions.url
    const status = reply.statusCode
    child(template ?? UNMATCHED_ROUTE, request.method, status).observe(reply.elapsedTime / 1000)
    // Better Auth's endpoints are routes of their own (src/routes/auth.ts): the template is its path.
    if (template?.startsWith(AUTH_PREFIX + '/') === true) countAuthOutcome(template.slice(AUTH_PREFIX.length), request, reply)
    if (status === 429) rateLimited.inc()
    done()
  })

  function countAuthOutcome (path: string, request: FastifyRequest, reply: FastifyReply) {
    const status = reply.statusCode
    if (status === 429 || status >= 500) return // refused before the credentials were checked, or a fault
    const failed = status >= 400
    switch (path) {
      case '/sign-up/email':
        if (!failed) signUps.inc()
        return
      case '/sign-in/email':
        if (failed) signIns.inc(signInLabels.email.failed)
        else if (setsSession(reply)) signIns.inc(signInLabels.email.succeeded)
        else if (setsTwoFactorCookie(reply)) signIns.inc(signInLabels.email.two_factor_required)
        return
      case '/sign-in/social':
        // Without an ID token this only starts the redirect to the provider: the callback counts.
        if (failed) signIns.inc(signInLabels.social.failed)
        else if (setsSession(reply)) signIns.inc(signInLabels.social.succeeded)
        else if (setsTwoFactorCookie(reply)) signIns.inc(signInLabels.social.two_factor_required)
        return
      case '/two-factor/verify-totp':
      case '/two-factor/verify-otp':
      case '/two-factor/verify-backup-code':
        // The second step of a sign-in carries the two_factor cookie; without it this is a signed-in user
        // turning two-factor on.
        if (request.headers.cookie?.includes('two_factor=')) signIns.inc(signInLabels.two_factor[failed ? 'failed' : 'succeeded'])
        return
      case '/request-password-reset':
        if (!failed) passwordResets.inc(resetRequested)
        return
      case '/reset-password':
        if (!failed) passwordResets.inc(resetCompleted)
        return
    }
    if (path.startsWith('/callback/')) {
      // Better Auth answers a provider's callback with a redirect: to the app with a session cookie (or the
      // two_factor cookie when a second factor is due), or with ?error=.
      if (failed || String(reply.getHeader('location') ?? '').includes('error=')) signIns.inc(signInLabels.social.failed)
      else if (setsSession(reply)) signIns.inc(signInLabels.social.succeeded)
      else if (setsTwoFactorCookie(reply)) signIns.inc(signInLabels.social.two_factor_required)
    }
  }

  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== METRICS_PATH) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n')
      return
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => {
        app.log.error({ err: error }, 'metrics could not be collected')
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Metrics could not be collected\n')
      })
  })
  // Scrapes are small and regular; a stuck scraper connection must not hold the process at shutdown.
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  app.decorate('metrics', { registry, server })

  // Started with the service's own listen (not in tests that only inject), on METRICS_HOST (default: HOST).
  app.addHook('onListen', async function listenForScrapes () {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, app.config.metricsHost, () => {
        server.off('error', reject)
        resolve()
      })
    }).then(
      () => app.log.info({ port, path: METRICS_PATH }, 'metrics server listening'),
      // Logged, not fatal: the service itself is up and should keep serving without its metrics.
      (error: Error) => app.log.error({ err: error, port }, 'metrics server could not listen')
    )
  })
  app.addHook('onClose', async () => {
    if (!server.listening) return
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await closed
  })
}, { name: 'metrics', dependencies: ['env', 'db', 'auth'], fastify: '5.x' })

type SignInMethod = 'email' | 'social' | 'two_factor'
type SignInOutcome = 'succeeded' | 'failed' | 'two_factor_required'

function setCookies (reply: FastifyReply): string[] {
  const value = reply.getHeader('set-cookie')
  return value === undefined ? [] : Array.isArray(value) ? value : [String(value)]
}

// A cookie set with a value (an expired one has none): `better-auth.session_token=<token>.<signature>; ...`.
function setsSession (reply: FastifyReply): boolean {
  return setCookies(reply).some((cookie) => /session_token=[^;]/.test(cookie))
}

function setsTwoFactorCookie (reply: FastifyReply): boolean {
  return setCookies(reply).some((cookie) => /two_factor=[^;]/.test(cookie))
}
