import { getMigrations } from 'better-auth/db/migration'
import type { Pool } from 'pg'
import type { Auth } from './create-auth.js'

// Two machines deploying at once must not interleave Better Auth's statements (they run one by one, without a
// transaction): every migration run holds this PostgreSQL advisory lock.
const MIGRATION_LOCK = 'pond-backend:migrations'

export interface PendingMigrations {
  /** Tables, columns and indexes to create, one line each. */
  changes: string[]
  sql: () => Promise<string>
}

/** What Better Auth would change in the live database for our options (plugins included). */
export async function pendingMigrations (auth: Auth): Promise<PendingMigrations> {
  const migrations = await getMigrations(auth.options)
  return { changes: describeChanges(migrations), sql: migrations.compileMigrations }
}

function describeChanges ({ toBeCreated, toBeAdded, toBeAddedIndexes }: Awaited<ReturnType<typeof getMigrations>>): string[] {
  return [
    ...toBeCreated.map((table) => `table "${table.table}"`),
    ...toBeAdded.map((table) => `columns of "${table.table}": ${Object.keys(table.fields).join(', ')}`),
    ...toBeAddedIndexes.map((index) => `index ${index.name} on "${index.table}"`)
  ]
}

export interface MigrationResult {
  /** What was applied; empty when the schema was already up to date. */
  applied: string[]
}

/** Applies pending migrations under the advisory lock; a second concurrent run waits, then finds nothing to do. */
export async function migrate (auth: Auth, pool: Pool): Promise<MigrationResult> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK])
    try {
      // Diffed after taking the lock, so a run that waited sees what the first one created.
      const migrations = await getMigrations(auth.options)
      const applied = describeChanges(migrations)
      if (applied.length > 0) await migrations.runMigrations()
      return { applied }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK])
    }
  } finally {
    client.release()
  }
}
