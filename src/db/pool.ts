import pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'

export interface DatabaseTarget {
  /** The URL to connect to. */
  url: string
  /** Set when a host on Fly's private network was rewritten to localhost for `fly proxy` or `fly mpg proxy`. */
  rewrittenFrom?: string
  /** The flyctl command that makes the rewritten URL work. */
  proxyCommand?: string
}

/**
 * Host names that only resolve on Fly's private network: `<app>.internal` (its DNS) and `<app>.flycast` (its private
 * proxy, which `fly postgres attach` writes into DATABASE_URL).
 */
const FLY_PRIVATE_SUFFIXES = ['.internal', '.flycast']

/**
 * Managed Postgres: `pgbouncer.<cluster>.flympg.net` (the pooled URL `fly mpg attach` sets) and
 * `direct.<cluster>.flympg.net` resolve on Fly's private network only. `fly mpg proxy <cluster>` forwards this local
 * port (flyctl's default; `-p` changes it) to the cluster's direct address.
 */
const MPG_SUFFIX = '.flympg.net'
export const MPG_PROXY_PORT = '16380'

/**
 * Off Fly, a host on Fly's private network does not resolve; `fly proxy <port> -a <app>` (or `fly mpg proxy
 * <cluster>`) listens on localhost instead, so the same DATABASE_URL works on a laptop. On Fly (FLY_APP_NAME set) the
 * URL is used as is.
 */
export function resolveDatabaseUrl (url: string, { onFly }: { onFly: boolean }): DatabaseTarget {
  const parsed = new URL(url)
  const original = parsed.hostname
  if (onFly) return { url }
  if (original.endsWith(MPG_SUFFIX)) {
    const cluster = original.slice(0, -MPG_SUFFIX.length).split('.').at(-1)
    parsed.hostname = '127.0.0.1'
    parsed.port = MPG_PROXY_PORT
    return { url: parsed.toString(), rewrittenFrom: original, proxyCommand: `fly mpg proxy ${cluster}` }
  }
  const suffix = FLY_PRIVATE_SUFFIXES.find((candidate) => original.endsWith(candidate))
  if (suffix === undefined) return { url }
  // `top1.nearest.of.pond-auth-db.internal` and `pond-auth-db.flycast` both name the app right before the suffix.
  const flyApp = original.slice(0, -suffix.length).split('.').at(-1)
  // fly proxy listens on 127.0.0.1; `localhost` may resolve to ::1 first.
  parsed.hostname = '127.0.0.1'
  const port = parsed.port || '5432'
  return { url: parsed.toString(), rewrittenFrom: original, proxyCommand: `fly proxy ${port} -a ${flyApp}` }
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

/**
 * A connection is replaced after this long, even when busy: Fly's proxy (in front of Managed Postgres and `.flycast`)
 * drains connections older than 10 minutes, and a connection cut mid-query would fail its request.
 */
export const CONNECTION_LIFETIME_SECONDS = 5 * 60

/**
 * The pool every part of the service uses. It works through PgBouncer in transaction mode, where consecutive
 * statements may run on different server connections: nothing here relies on session state (no named prepared
 * statements, no session-level SET or advisory lock). `sslmode` in the URL is honoured by pg.
 */
export function createPool (url: string, { log, max = 10 }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // Fail fast when the database is unreachable instead of queueing requests forever.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    maxLifetimeSeconds: CONNECTION_LIFETIME_SECONDS,
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
