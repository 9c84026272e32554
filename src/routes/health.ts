import type { FastifyInstance } from 'fastify'
import { pendingMigrations } from '../auth/migrations.js'
import { databaseAnswers } from '../db/availability.js'
import { livenessSchema, readinessSchema } from './schemas.js'

const DATABASE_CHECK_TIMEOUT_MS = 2_000

// Fly checks every machine every 15 s: at info level, that was two log lines per check. A failing check still logs
// its reason as a warning, and a 5xx is logged as an error by the error handler.
const QUIET = 'warn'

export default async function healthRoutes (app: FastifyInstance) {
  // Liveness: the process answers. No database, so a database outage never gets machines restarted.
  app.get('/health', { schema: livenessSchema, logLevel: QUIET }, async () => ({ status: 'ok' }))

  // Once the schema is complete it stays complete for this code: skip the schema diff from then on.
  let schemaComplete = false

  // Readiness: the database answers and Better Auth's schema is migrated.
  app.get('/health/ready', { schema: readinessSchema, logLevel: QUIET }, async (request, reply) => {
    if (!await databaseAnswers(app.pg, DATABASE_CHECK_TIMEOUT_MS)) {
      request.log.warn('readiness: database unreachable')
      return reply.code(503).send({ status: 'unavailable', reason: 'database unreachable' })
    }
    if (!schemaComplete) {
      const { changes } = await pendingMigrations(app.auth)
      if (changes.length > 0) {
        request.log.warn({ pending: changes.length }, 'readiness: migrations pending')
        return reply.code(503).send({ status: 'unavailable', reason: 'migrations pending: run pnpm migrate', pending: changes })
      }
      schemaComplete = true
    }
    return { status: 'ready' }
  })
}
