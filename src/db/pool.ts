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
 * Hosts that resolve on Fly's private network only, and the flyctl command that makes each reachable from a laptop,
 * on 127.0.0.1: `<app>.internal` (Fly's DNS) and `<app>.flycast` (what `fly postgres attach` writes) through
 * `fly proxy` on the URL's port; Managed Postgres's `pgbouncer.<cluster>.flympg.net` (what `fly mpg attach` writes)
 * and `direct.<cluster>.flympg.net` through `fly mpg proxy`, which listens on 16380 (flyctl's default; `-p` changes
 * it) and forwards to the cluster's direct address.
 */
const FLY_PRIVATE_HOSTS: Array<{ suffix: string, localPort: (port: string) => string, command: (name: string, port: string) => string }> = [
  { suffix: '.internal', localPort: (port) => port, command: (app, port) => `fly proxy ${port} -a ${app}` },
  { suffix: '.flycast', localPort: (port) => port, command: (app, port) => `fly proxy ${port} -a ${app}` },
  { suffix: '.flympg.net', localPort: () => '16380', command: (cluster) => `fly mpg proxy ${cluster}` }
]

/**
 * Off Fly, a host on Fly's private network does not resolve; flyctl's proxy listens on 127.0.0.1 instead, so the same
 * DATABASE_URL works on a laptop. On Fly (FLY_APP_NAME set) the URL is used as is.
 */
export function resolveDatabaseUrl (url: string, { onFly }: { onFly: boolean }): DatabaseTarget {
  const parsed = new URL(url)
  const original = parsed.hostname
  const host = FLY_PRIVATE_HOSTS.find((candidate) => original.endsWith(candidate.suffix))
  if (onFly || host === undefined) return { url }
  // The app or cluster is the name right before the suffix: `top1.nearest.of.pond-auth-db.internal`,
  // `pond-auth-db.flycast`, `pgbouncer.<cluster>.flympg.net`.
  const name = original.slice(0, -host.suffix.length).split('.').at(-1)!
  // 127.0.0.1, where flyctl listens; `localhost` may resolve to ::1 first.
  parsed.hostname = '127.0.0.1'
  parsed.port = host.localPort(parsed.port)
  return { url: parsed.toString(), rewrittenFrom: original, proxyCommand: host.command(name, parsed.port || '5432') }
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
