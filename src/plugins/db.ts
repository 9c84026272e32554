import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../db/embedded-postgres.js'
import { createPool, maskUrl, resolveDatabaseUrl } from '../db/pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    pg: Pool
    /** True when this process started its own development PostgreSQL (no DATABASE_URL). */
    usesEmbeddedDatabase: boolean
  }
}

export default fp(async function dbPlugin (app) {
  const { config } = app
  let url: string
  let embedded: EmbeddedPostgres | undefined
  if (config.databaseUrl !== undefined) {
    const target = resolveDatabaseUrl(config.databaseUrl, { onFly: config.flyAppName !== undefined })
    if (target.rewrittenFrom !== undefined) {
      app.log.info({ database: maskUrl(target.url) },
        `${target.rewrittenFrom} is on Fly's private network: connecting to localhost instead ` +
        '(keep `fly proxy 5432 -a pond-auth-db` running)')
    }
    url = target.url
  } else {
    // The env schema requires DATABASE_URL in production, so this is development with zero setup.
    embedded = await startEmbeddedPostgres({ baseDir: config.dataDir, log: app.log })
    url = embedded.url
  }

  const pool = createPool(url, { log: app.log })
  app.decorate('pg', pool)
  app.decorate('usesEmbeddedDatabase', embedded !== undefined)
  app.addHook('onClose', async () => {
    await pool.end()
    await embedded?.stop()
  })
}, { name: 'db', dependencies: ['env'], fastify: '5.x' })
