import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildAppOptions } from '../../src/app.js'
import { loggerOptions } from '../../src/logger.js'
import { migrate } from '../../src/auth/migrations.js'
import { createTestDatabase } from './database.js'
import { freePort } from './ports.js'

export { freePort }

type Test = { teardown: (fn: () => unknown) => void }

export const TRUSTED_ORIGIN = 'http://localhost:5173'
export const UNTRUSTED_ORIGIN = 'http://localhost:6666'
export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789'

export interface TestAppOptions {
  /** Extra or replaced variables; `DATABASE_URL: undefined` removes it. */
  env?: Record<string, string | undefined>
  /** Apply Better Auth's schema before returning (default true). */
  migrate?: boolean
  /** Listen on a free loopback port (for tests where the network matters). */
  listen?: boolean
  /** Replaces some server options (timeouts). */
  server?: BuildAppOptions['server']
}

export interface TestApp {
  app: FastifyInstance
  /** http://localhost:<port> when listening. */
  url: string
  databaseUrl: string
  /** Every log line the app wrote, parsed. */
  logs: Array<Record<string, unknown>>
  rawLogs: () => string
}

/** The whole service on its own fresh database, closed at teardown. */
export async function buildTestApp (t: Test, options: TestAppOptions = {}): Promise<TestApp> {
  const databaseUrl = await createTestDatabase(t)
  const port = options.listen ? await freePort() : 3000
  const url = `http://localhost:${port}`
  const env = Object.fromEntries(Object.entries({
    DATABASE_URL: databaseUrl,
    BETTER_AUTH_SECRET: TEST_SECRET,
    BETTER_AUTH_URL: url,
    TRUSTED_ORIGINS: TRUSTED_ORIGIN,
    PORT: String(port),
    LOG_LEVEL: 'info',
    // Explicit opt-out: tests sign in far more often than a person would; test/rate-limit.test.ts turns it on.
    RATE_LIMIT: 'off',
    ...options.env
  }).filter((entry): entry is [string, string] => entry[1] !== undefined))

  const { stream, logs, rawLogs } = logCapture()
  // The production logger options (redaction included), writing to memory.
  const logger = { ...loggerOptions({ isProduction: false, logLevel: 'info' }), stream }
  const app = await buildApp({ env, logger, server: options.server })
  t.teardown(() => app.close())
  if (options.migrate ?? true) await migrate(app.auth, app.pg)
  if (options.listen) await app.listen({ port, host: '127.0.0.1' })
  return { app, url, databaseUrl, logs, rawLogs }
}

export function logCapture () {
  let raw = ''
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      raw += chunk.toString()
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line))
      done()
    }
  })
  return { stream, logs, rawLogs: () => raw }
}


/** A fresh database with Better Auth's schema applied, for tests that start the server as a process. */
export async function createMigratedDatabase (t: Test): Promise<string> {
  const { databaseUrl } = await buildTestApp(t)
  return databaseUrl
}

/** The environment a production server process needs, for a database and a port. */
export function productionEnv (databaseUrl: string, port: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    BETTER_AUTH_SECRET: TEST_SECRET,
    BETTER_AUTH_URL: `http://localhost:${port}`,
    TRUSTED_ORIGINS: TRUSTED_ORIGIN,
    PORT: String(port),
    HOST: '127.0.0.1',
    // Nothing listens there: these tests send no mail, and a failed send is only logged.
    SMTP_URL: 'smtp://127.0.0.1:1',
    MAIL_FROM: 'Pond <no-reply@pond.example>'
  }
}
