// `pnpm migrate [--dry-run]`: applies Better Auth's schema to DATABASE_URL (or the embedded development database).
// Compiled to dist/scripts/migrate.js, it is fly.toml's release_command and runs with production dependencies only.
import { parseArgs } from 'node:util'
import { createAuth } from '../src/auth/create-auth.js'
import { migrate, pendingMigrations } from '../src/auth/migrations.js'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { openDatabase } from '../src/db/open-database.js'
import { createPool, maskUrl } from '../src/db/pool.js'

const { values: args } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false } } })
const say = (line: string) => process.stdout.write(`${line}\n`)
// The database's notices (the .internal rewrite, the embedded server) as plain lines; pino's shape is
// (fields, message) or (message).
const sayLog = (fieldsOrMessage: unknown, message?: string) => say(message ?? String(fieldsOrMessage))
const log = { info: sayLog, warn: sayLog, error: sayLog }

async function main (): Promise<number> {
  const config = loadConfig({ dotenv: process.env.NODE_ENV !== 'production' })
  const database = await openDatabase(config, log)
  say(`Database: ${maskUrl(database.url)}`)

  const pool = createPool(database.url, { log, max: 2 })
  try {
    const auth = createAuth(config, pool)
    if (args['dry-run']) {
      const { changes, sql } = await pendingMigrations(auth)
      if (changes.length === 0) {
        say('Nothing to migrate: the schema is up to date.')
      } else {
        say(`Would apply ${changes.length} change(s):\n${(await sql())}`)
      }
      return 0
    }
    const { applied } = await migrate(auth, pool)
    if (applied.length === 0) say('Nothing to migrate: the schema is up to date.')
    else say(`Migrated:\n${applied.map((change) => `  + ${change}`).join('\n')}`)
    return 0
  } finally {
    await pool.end()
    await database.stop()
  }
}

try {
  process.exitCode = await main()
} catch (error) {
  const message = error instanceof ConfigError ? error.message : `Migration failed: ${(error as Error).message}`
  process.stderr.write(`${message}\n`)
  process.exitCode = 1
}
