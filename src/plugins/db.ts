import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import { openDatabase } from '../db/open-database.js'
import { createPool } from '../db/pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    pg: Pool
    /** True when this process started its own development PostgreSQL (no DATABASE_URL). */
    usesEmbeddedDatabase: boolean
  }
}

export default fp(async function dbPlugin (app) {
  const database = await openDatabase(app.config, app.log)
  const pool = createPool(database.url, { log: app.log })
  app.decorate('pg', pool)
  app.decorate('usesEmbeddedDatabase', database.embedded)
  app.addHook('onClose', async () => {
    await pool.end()
    await database.stop()
  })
}, { name: 'db', dependencies: ['env'], fastify: '5.x' })
