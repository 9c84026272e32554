// `pnpm migrate [--dry-run]`: applies Better Auth's schema to the database (DATABASE_DIRECT_URL when set, else
// DATABASE_URL, else the embedded development database). Compiled to dist/scripts/migrate.js, it is fly.toml's
// release_command and runs with production dependencies only. It needs the database and nothing else: no mail,
// no URLs, no secrets (see loadMigrationConfig).
import { parseArgs } from 'node:util'
import { createSchemaAuth, migrate, pendingMigrations } from '../src/auth/migrations.js'
import { ConfigError, loadMigrationConfig } from '../src/config/index.js'
import { maskUrl } from '../src/db/pool.js'
import { say, withDatabase } from './script-database.js'

const { values: args } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false } } })

async function main (): Promise<number> {
  const config = loadMigrationConfig({ dotenv: true })
  return withDatabase(config, async (pool, database) => {
    say(`Database: ${maskUrl(database.url)}`)
    const auth = createSchemaAuth(config, pool)
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
  }, { direct: true })
}

try {
  process.exitCode = await main()
} catch (error) {
  const message = error instanceof ConfigError ? error.message : `Migration failed: ${(error as Error).message}`
  process.stderr.write(`${message}\n`)
  process.exitCode = 1
}
