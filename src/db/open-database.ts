import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config/index.js'
import { startEmbeddedPostgres } from './embedded-postgres.js'
import { maskUrl, resolveDatabaseUrl } from './pool.js'

export interface Database {
  url: string
  /** True when this process started its own development PostgreSQL. */
  embedded: boolean
  /** Stops the embedded PostgreSQL, if this process started one. */
  stop: () => Promise<void>
}

/**
 * The database this configuration points at: DATABASE_URL (with Fly's `.internal` host rewritten off Fly), or, in
 * development without one, an embedded PostgreSQL started now. The server and `pnpm migrate` both start here.
 */
export async function openDatabase (config: Config, log: Pick<FastifyBaseLogger, 'info' | 'warn'>): Promise<Database> {
  if (config.databaseUrl === undefined) {
    // The env schema requires DATABASE_URL in production, so this is development with zero setup.
    const embedded = await startEmbeddedPostgres({ baseDir: config.dataDir, log })
    return { url: embedded.url, embedded: true, stop: embedded.stop }
  }
  const target = resolveDatabaseUrl(config.databaseUrl, { onFly: config.flyAppName !== undefined })
  if (target.rewrittenFrom !== undefined) {
    log.info({ database: maskUrl(target.url) },
      `${target.rewrittenFrom} is on Fly's private network: connecting to localhost instead ` +
      '(keep `fly proxy 5432 -a pond-auth-db` running)')
  }
  return { url: target.url, embedded: false, stop: async () => {} }
}
