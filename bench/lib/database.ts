// The bench's database: a fresh `pond_bench_<random>` on a PostgreSQL server (the machine's, or the embedded one),
// seeded with users directly in SQL, dropped at the end.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js'
import { query } from '../../test/helpers/database.js'

export const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

export interface DatabaseServer {
  /** URL of the server's maintenance database (to create and drop ours). */
  adminUrl: string
  /** Where it came from, for the report. */
  source: string
  stop: () => Promise<void>
}

async function answers (url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/** BENCH_DATABASE_URL's server; else the default one when it answers; else the embedded PostgreSQL. */
export async function openServer (projectRoot: string, say: (line: string) => void): Promise<DatabaseServer> {
  const wanted = process.env.BENCH_DATABASE_URL
  if (wanted !== undefined && wanted !== '') {
    if (!await answers(wanted)) throw new Error('BENCH_DATABASE_URL does not answer')
    return { adminUrl: wanted, source: 'BENCH_DATABASE_URL', stop: async () => {} }
  }
  if (await answers(DEFAULT_SERVER_URL)) return { adminUrl: DEFAULT_SERVER_URL, source: '127.0.0.1:5432', stop: async () => {} }
  say('No PostgreSQL on 127.0.0.1:5432: starting the embedded one (.data/bench)')
  const log = { info: () => {}, warn: (...args: unknown[]) => say(`embedded PostgreSQL: ${args.map(String).join(' ')}`) }
  const embedded = await startEmbeddedPostgres({ baseDir: join(projectRoot, '.data', 'bench'), log: log as never })
  return { adminUrl: embedded.url, source: 'embedded PostgreSQL', stop: embedded.stop }
}

/** Creates an empty database and returns its name and URL. */
export async function createDatabase (adminUrl: string): Promise<{ name: string, url: string }> {
  const name = `pond_bench_${randomBytes(6).toString('hex')}`
  await query(adminUrl, `CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { name, url: url.toString() }
}

/** Drops the database even while connections remain (PostgreSQL 13+). */
export async function dropDatabase (adminUrl: string, name: string): Promise<void> {
  await query(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}

export async function serverVersion (url: string): Promise<string> {
  return (await query(url, 'SHOW server_version')).rows[0].server_version as string
}

export interface SeedUser { email: string }

/**
 * `count` verified users with a credential account, all with the same password hash (scrypt is the slow part of a
 * sign-in, not of seeding), in one statement each for users and accounts.
 */
export async function seedUsers (url: string, count: number, passwordHash: string): Promise<SeedUser[]> {
  const users = Array.from({ length: count }, (_, i) => ({
    id: randomBytes(16).toString('base64url'),
    accountId: randomBytes(16).toString('base64url'),
    email: `bench-${i}@pond.example`
  }))
  await query(url, `
      INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
      SELECT id, 'Bench user', email, true, now(), now() FROM unnest($1::text[], $2::text[]) AS u(id, email)`,
    [users.map((user) => user.id), users.map((user) => user.email)])
  await query(url, `
      INSERT INTO account (id, "accountId", "providerId", "userId", password, "createdAt", "updatedAt")
      SELECT a.id, u.id, 'credential', u.id, $3, now(), now() FROM unnest($1::text[], $2::text[]) AS a(id, "userId")
      JOIN "user" u ON u.id = a."userId"`,
    [users.map((user) => user.accountId), users.map((user) => user.id), passwordHash])
  return users.map(({ email }) => ({ email }))
}
