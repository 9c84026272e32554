import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config/index.js'
import { startEmbeddedPostgres } from './embedded-postgres.js'
import { maskUrl, resolveDatabaseUrl } from './pool.js'

type DatabaseConfig = Pick<Config, 'databaseUrl' | 'directDatabaseUrl' | 'flyAppName' | 'dataDir'>

export interface Database {
  url: string
  /** True when this process started its own development PostgreSQL. */
  embedded: boolean
  /** The flyctl command that must run for `url` to answer, when a host on Fly's private network was rewritten. */
  proxyCommand?: string
  /** Stops the embedded PostgreSQL, if this process started one. */
  stop: () => Promise<void>
}

/**
 * The database this configuration points at: DATABASE_URL (with a host on Fly's private network rewritten off Fly),
 * or, in development without one, an embedded PostgreSQL started now. The server and `pnpm migrate` both start here;
 * `direct` (migrations) prefers DATABASE_DIRECT_URL, which bypasses a connection pooler.
 */
export async function openDatabase (config: DatabaseConfig, log: Pick<FastifyBaseLogger, 'info' | 'warn'>, { direct = false }: { direct?: boolean } = {}): Promise<Database> {
  if (direct && config.directDatabaseUrl !== undefined) {
    return { ...reachable(config.directDatabaseUrl, config, log), embedded: false, stop: async () => {} }
  }
  if (config.databaseUrl === undefined) {
    // The env schema requires DATABASE_URL in production, so this is development with zero setup.
    const embedded = await startEmbeddedPostgres({ baseDir: config.dataDir, log })
    return { url: embedded.url, embedded: true, stop: embedded.stop }
  }
  return { ...reachable(config.databaseUrl, config, log), embedded: false, stop: async () => {} }
}

/** The URL as this machine can reach it; a rewrite for flyctl's proxy is logged once, with the password masked. */
function reachable (url: string, config: DatabaseConfig, log: Pick<FastifyBaseLogger, 'info'>): Pick<Database, 'url' | 'proxyCommand'> {
  const target = resolveDatabaseUrl(url, { onFly: config.flyAppName !== undefined })
  if (target.rewrittenFrom !== undefined) {
    log.info({ database: maskUrl(target.url) },
      `${target.rewrittenFrom} is on Fly's private network: connecting to ${new URL(target.url).host} instead ` +
      `(keep \`${target.proxyCommand}\` running)`)
  }
  return { url: target.url, proxyCommand: target.proxyCommand }
}
