import { redisStorage } from '@better-auth/redis-storage'
import { fromNodeHeaders } from 'better-auth/node'
import { Redis } from 'ioredis'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { createAuth, type Auth } from '../auth/create-auth.js'
import { migrate } from '../auth/migrations.js'

export type SessionWithUser = NonNullable<Awaited<ReturnType<Auth['api']['getSession']>>>

declare module 'fastify' {
  interface FastifyInstance {
    auth: Auth
    /** preHandler for our own routes: 401 without a valid session, otherwise sets `request.session`. */
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    session: SessionWithUser | null
  }
}

export default fp(async function authPlugin (app) {
  const redis = app.config.redisUrl === undefined ? undefined : connectRedis(app.config.redisUrl, app)
  const auth = createAuth(app.config, app.pg, {
    log: app.log,
    mailer: app.mailer,
    secondaryStorage: redis === undefined ? undefined : redisStorage({ client: redis, keyPrefix: 'pond-backend:' })
  })
  app.decorate('auth', auth)

  if (app.usesEmbeddedDatabase) {
    // The development database belongs to this process: keep its schema current so a fresh clone just runs.
    const { applied } = await migrate(auth, app.pg)
    if (applied.length > 0) app.log.info({ applied }, 'embedded database migrated')
  }

  app.decorateRequest('session', null)
  app.decorate('requireSession', async function requireSession (request: FastifyRequest, reply: FastifyReply) {
    const session = await auth.api.getSession({ headers: fromNodeHeaders(request.headers) })
    if (session === null) {
      await reply.code(401).send({ code: 'UNAUTHORIZED', message: 'Sign in to use this route.' })
      return
    }
    request.session = session
  })
}, { name: 'auth', dependencies: ['env', 'db', 'mailer'], fastify: '5.x' })

function connectRedis (url: string, app: FastifyInstance): Redis {
  // Fail a command fast while Redis is away rather than queueing requests behind it.
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: false })
  redis.on('error', (error) => app.log.error({ err: { message: error.message } }, 'redis error'))
  app.addHook('onClose', async () => { await redis.quit().catch(() => redis.disconnect()) })
  return redis
}
