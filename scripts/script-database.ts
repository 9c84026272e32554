// What the command-line scripts share: plain output lines and a database opened for the length of one task.
import type { Pool } from 'pg'
import { openDatabase, type Database } from '../src/db/open-database.js'
import { createPool } from '../src/db/pool.js'

export const say = (line: string) => process.stdout.write(`${line}\n`)

// The database's notices (the .internal rewrite, the embedded server) as plain lines; pino's shape is
// (fields, message) or (message).
const sayLog = (fieldsOrMessage: unknown, message?: string) => say(message ?? String(fieldsOrMessage))
export const plainLog = { info: sayLog, warn: sayLog, error: sayLog }

/**
 * Opens DATABASE_URL (or the embedded development database; with `direct`, DATABASE_DIRECT_URL when set), runs
 * `task`, and closes everything again.
 */
export async function withDatabase<T> (config: Parameters<typeof openDatabase>[0], task: (pool: Pool, database: Database) => Promise<T>,
  { direct = false }: { direct?: boolean } = {}): Promise<T> {
  const database = await openDatabase(config, plainLog, { direct })
  const pool = createPool(database.url, { log: plainLog, max: 2 })
  try {
    return await task(pool, database)
  } finally {
    await pool.end()
    await database.stop()
  }
}
