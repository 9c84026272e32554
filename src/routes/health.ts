import type { FastifyInstance } from 'fastify'
import { pendingMigrations } from '../auth/migrations.js'
import { livenessSchema, readinessSchema } from './schemas.js'

const DATABASE_CHECK_TIMEOUT_MS = 2_000

export default async function healthRoutes (app: FastifyInstance) {
  // Liveness: the process answers. No database, so a database outage never gets machines restarted.
  app.get('/health', { schema: livenessSchema }, async () => ({ status: 'ok' }))

  // Once the schema is complete it stays complete for this code: skip the schema diff from then on.
  let schemaComplete = false

  // Readiness: the database answers and Better Auth's schema is migrated.
  app.get('/health/ready', { schema: readinessSchema }, async (request, reply) => {
    try {
      await withTimeout(app.pg.query('SELECT 1'), DATABASE_CHECK_TIMEOUT_MS)
    } catch (error) {
      request.log.warn({ err: { message: (error as Error).message } }, 'readiness: database unreachable')
      return reply.code(503).send({ status: 'unavailable', reason: 'database unreachable' })
    }
    if (!schemaComplete) {
      const { changes } = await pendingMigrations(app.auth)
      if (changes.length > 0) {
        return reply.code(503).send({ status: 'unavailable', reason: 'migrations pending: run pnpm migrate', pending: changes })
      }
      schemaComplete = true
    }
    return { status: 'ready' }
  })
}

function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
