import pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'

export interface DatabaseTarget {
  /** The URL to connect to. */
  url: string
  /** Set when a Fly `.internal` host was rewritten to localhost for `fly proxy`. */
  rewrittenFrom?: string
}

/**
 * Off Fly, `<app>.internal` does not resolve; `fly proxy 5432 -a pond-auth-db` listens on localhost instead.
 * On Fly (FLY_APP_NAME set) the URL is used as is.
 */
export function resolveDatabaseUrl (url: string, { onFly }: { onFly: boolean }): DatabaseTarget {
  const parsed = new URL(url)
  if (onFly || !parsed.hostname.endsWith('.internal')) return { url }
  const original = parsed.hostname
  parsed.hostname = 'localhost'
  return { url: parsed.toString(), rewrittenFrom: original }
}

/** The URL with its password replaced, for logs and messages. */
export function maskUrl (url: string): string {
  const parsed = new URL(url)
  if (parsed.password) parsed.password = '****'
  return parsed.toString()
}

export interface PoolOptions {
  /** Logged, never thrown: a dropped idle connection must not crash the process. */
  log: Pick<FastifyBaseLogger, 'error'>
  max?: number
}

export function createPool (url: string, { log, max = 10 }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // Fail fast when the database is unreachable instead of queueing requests forever.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: 'pond-backend'
  })
  const logLost = (error: Error) => {
    log.error({ err: { message: error.message, code: (error as { code?: string }).code } }, 'database connection lost')
  }
  // The pool listens for errors on idle clients only. A client checked out between two queries (a transaction)
  // that loses its connection would emit an unhandled 'error' and crash the process: listen on every client.
  // Its holder's next query then fails, and releasing it with that error discards it.
  pool.on('connect', (client) => client.on('error', logLost))
  pool.on('error', logLost)
  return pool
}
