import { betterAuth } from 'better-auth'
import type { FastifyBaseLogger } from 'fastify'
import type { Pool } from 'pg'
import { CLIENT_IP_HEADER } from '../client-ip.js'
import type { Config } from '../config/index.js'

/** How long a session (and its cookie) lives; Better Auth extends it as it is used (sliding expiry). */
export const SESSION_EXPIRES_IN_SECONDS = 7 * 24 * 60 * 60

/**
 * The one Better Auth instance, built from the configuration. The server, `pnpm migrate` and
 * better-auth.config.ts (Better Auth's CLI) all call this, so they agree on options and plugins.
 */
export function createAuth (config: Pick<Config, 'auth'>, pool: Pool, log?: FastifyBaseLogger) {
  return betterAuth({
    // Better Auth's own messages go to our logger (JSON, redacted), not straight to the console. Only the
    // message: its extra arguments can carry request data.
    logger: log === undefined
      ? undefined
      : { level: 'info', log: (level, message) => log[level]({ component: 'better-auth' }, message) },
    database: pool,
    secret: config.auth.secret,
    baseURL: config.auth.baseURL,
    trustedOrigins: config.auth.trustedOrigins,
    emailAndPassword: { enabled: true },
    session: { expiresIn: SESSION_EXPIRES_IN_SECONDS },
    telemetry: { enabled: false },
    advanced: {
      // Better Auth turns origin checks off when NODE_ENV=test; keep them on everywhere.
      disableOriginCheck: false,
      // Rate limits and session records key on the address our auth route puts here (see src/client-ip.ts).
      ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
      // Better Auth caches a failed schema check per instance, so a machine that served before `pnpm migrate` ran
      // elsewhere would fail until restarted. /health/ready reports pending migrations instead.
      database: { validateSchema: false }
    }
  })
}

export type Auth = ReturnType<typeof createAuth>
