import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { RATE_LIMITS } from '../auth/create-auth.js'
import { clientBudgetKey } from '../client-ip.js'

/**
 * The limit on our own read routes (/api/me, and get-session when it is answered here rather than by Better Auth,
 * whose limiter then never sees it): Better Auth's default budget, per client address (IPv6: per /64), counted in each machine's
 * memory. A read costs one query; counting it in the database as Better Auth does would cost more than the read.
 */
export const ROUTE_RATE_LIMIT = { max: RATE_LIMITS.default.max, timeWindow: RATE_LIMITS.default.window * 1000 }

/** @fastify/rate-limit for the routes whose config names a `rateLimit`; off with RATE_LIMIT=off. */
export default fp(async function routeRateLimitPlugin (app) {
  if (!app.config.rateLimit) return
  await app.register(rateLimit, {
    global: false,
    // IPv6 by /64, as Better Auth's limiter counts: addresses rotated within one network share one budget.
    keyGenerator: (request) => clientBudgetKey(request.clientIp),
    // Like Better Auth's limiter: no X-RateLimit-* headers on every answer (three headers on every page's session
    // check), only Retry-After on a 429.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    // Thrown to our error handler, which answers { code, message }; the plugin adds Retry-After.
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      code: 'TOO_MANY_REQUESTS',
      message: `Too many requests. Try again in ${Math.ceil(context.ttl / 1000)} seconds.`
    })
  })
}, { name: 'route-rate-limit', dependencies: ['env', 'client-ip'], fastify: '5.x' })
