import { fromNodeHeaders } from 'better-auth/node'
import type { Redis } from 'ioredis'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { createAuth, type Auth } from '../auth/create-auth.js'
import { migrate } from '../auth/migrations.js'
import { withoutSessions } from '../auth/secondary-storage.js'
import { createSessionReader, type ReadSession, type SessionWithUser } from '../auth/session-reader.js'
import { settleWithin } from '../settle-within.js'

declare module 'fastify' {
  interface FastifyInstance {
    auth: Auth
    /** The session of a Cookie header, read as Better Auth reads it but with one query (src/auth/session-reader.ts). */
    readSession: ReadSession
    /** preHandler for our own routes: 401 without a valid session, otherwise sets `request.session`. */
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    session: SessionWithUser | null
  }
}

/** How long closing waits for audit writes still running: its share of the shutdown (src/server.ts). */
export const AUDIT_CLOSE_WAIT_MS = 1_000

export default fp(async function authPlugin (app) {
  const pendingAuditWrites = new Set<Promise<void>>()
  const auth = createAuth(app.config, app.pg, {
    log: app.log,
    mailer: app.mailer,
    secondaryStorage: app.config.redisUrl === undefined ? undefined : await redisSecondaryStorage(app.config.redisUrl, app),
    pendingAuditWrites
  })
  app.decorate('auth', auth)
  // Before the pool ends (this plugin closes before the db plugin): a write still queued then would be lost.
  app.addHook('onClose', async () => {
    if (!await settleWithin(pendingAuditWrites, AUDIT_CLOSE_WAIT_MS)) {
      app.log.warn({ count: pendingAuditWrites.size }, 'closing with audit events still being written')
    }
  })

  if (app.usesEmbeddedDatabase) {
    // The development database belongs to this process: keep its schema current so a fresh clone just runs.
    const { applied } = await migrate(auth, app.pg)
    if (applied.length > 0) app.log.info({ applied }, 'embedded database migrated')
  }

  const previousSecrets = (app.config.auth.secrets ?? []).slice(1).map((secret) => secret.value)
  const readSession = await createSessionReader(auth, app.pg, previousSecrets)
  app.decorate('readSession', readSession)

  app.decorateRequest('session', null)
  app.decorate('requireSession', async function requireSession (request: FastifyRequest, reply: FastifyReply) {
    const read = await readSession(request.headers.cookie)
    let session: SessionWithUser | null = read.kind === 'valid' ? read.value : null
    if (read.kind === 'ask-better-auth') {
      // A refresh is due (or the session is gone): Better Auth decides, and its new cookie goes to the client.
      const { response, headers } = await auth.api.getSession({ headers: fromNodeHeaders(request.headers), returnHeaders: true })
      const cookies = headers.getSetCookie()
      if (cookies.length > 0) reply.header('set-cookie', cookies)
      session = response
    }
    if (session === null) {
      await reply.code(401).send({ code: 'UNAUTHORIZED', message: 'Sign in to use this route.' })
      return
    }
    request.session = session
  })
}, { name: 'auth', dependencies: ['env', 'db', 'mailer'], fastify: '5.x' })

/**
 * Better Auth's secondary storage on Redis, sessions excepted (see src/auth/secondary-storage.ts). Loaded only when
 * REDIS_URL is set: ioredis alone is ~20 MB of memory.
 */
async function redisSecondaryStorage (url: string, app: FastifyInstance) {
  const [{ Redis }, { redisStorage }] = await Promise.all([import('ioredis'), import('@better-auth/redis-storage')])
  // Fail a command fast while Redis is away rather than queueing requests behind it.
  const redis: Redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: false })
  redis.on('error', (error) => app.log.error({ err: { message: error.message } }, 'redis error'))
  app.addHook('onClose', async () => { await redis.quit().catch(() => redis.disconnect()) })
  return withoutSessions(redisStorage({ client: redis, keyPrefix: 'pond-backend:' }))
}
