import { randomBytes } from 'node:crypto'
import { getMigrations } from 'better-auth/db/migration'
import type { Pool } from 'pg'
import type { MigrationConfig } from '../config/index.js'
import { createAuth, type Auth } from './create-auth.js'

// Two machines deploying at once must not interleave Better Auth's statements: every migration run holds this
// PostgreSQL advisory lock for the length of its transaction.
const MIGRATION_LOCK = 'pond-backend:migrations'

/** How long a run waits for another run's lock (or for a table lock held by serving machines) before giving up. */
export const MIGRATION_LOCK_TIMEOUT_MS = 120_000

export interface PendingMigrations {
  /** Tables, columns and indexes to create, one line each. */
  changes: string[]
  sql: () => Promise<string>
}

/**
 * The Better Auth instance whose options decide the schema, for a migration run. The schema depends on the plugins
 * and on where rate limits are counted, never on URLs, mail or secrets, so none of those is needed: the secret is a
 * throwaway (this instance signs nothing).
 */
export function createSchemaAuth (config: MigrationConfig, pool: Pool): Auth {
  return createAuth({
    rateLimit: config.rateLimit,
    redisUrl: config.redisUrl,
    app: { name: 'Pond', frontendURL: 'http://localhost' },
    auth: {
      secret: randomBytes(32).toString('base64url'),
      secretSource: 'generated',
      baseURL: 'http://localhost',
      trustedOrigins: ['http://localhost'],
      requireEmailVerification: false,
      socialProviders: {}
    }
  }, pool)
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

/** A migration that could not run, with what to do about it. */
export class MigrationError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MigrationError'
  }
}

/**
 * Applies pending migrations in one transaction that holds a transaction-scoped advisory lock: a second concurrent
 * run waits, then finds nothing to do. One transaction keeps every statement, the lock included, on one server
 * connection, so this is safe through PgBouncer in transaction mode too, and the lock can never outlive the run
 * (a session-level lock and its unlock could land on different server connections there). PostgreSQL's DDL is
 * transactional: a failed run leaves nothing half made.
 */
export async function migrate (auth: Auth, pool: Pool, { lockTimeoutMs = MIGRATION_LOCK_TIMEOUT_MS } = {}): Promise<MigrationResult> {
  const client = await pool.connect()
  let failed = false
  try {
    await client.query('BEGIN')
    try {
      await client.query(`SET LOCAL lock_timeout = ${Math.trunc(lockTimeoutMs)}`)
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [MIGRATION_LOCK])
    } catch (error) {
      throw explain(error, lockTimeoutMs)
    }
    // Diffed once the lock is held (on another connection, which sees what a run before us committed).
    const migrations = await getMigrations(auth.options)
    const applied = describeChanges(migrations)
    // Kysely's DDL has no parameters: the compiled statements run as one script inside our transaction.
    if (applied.length > 0) await client.query(await migrations.compileMigrations()).catch((error: unknown) => { throw explain(error, lockTimeoutMs) })
    await client.query('COMMIT')
    return { applied }
  } catch (error) {
    failed = true
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release(failed)
  }
}

function explain (error: unknown, lockTimeoutMs: number): unknown {
  const { code, message } = error as { code?: string, message?: string }
  if (code === '55P03') {
    return new MigrationError(`waited ${lockTimeoutMs / 1000} s for a lock (another migration still running, or a ` +
      'long transaction on the tables it changes): nothing was changed; run it again once that has finished', { cause: error })
  }
  if (/transaction blocks not allowed|prepared statement .* (does not exist|already exists)/i.test(message ?? '')) {
    return new MigrationError(`${message}: this URL goes through a connection pooler that cannot run a migration; ` +
      'set DATABASE_DIRECT_URL to the database\'s direct URL', { cause: error })
  }
  return error
}
