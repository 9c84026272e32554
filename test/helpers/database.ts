import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { databaseUrlFile, runDir } from '../setup/shared.js'

type Test = { teardown: (fn: () => unknown) => void }

/** The server the suite runs against: TEST_DATABASE_URL, or the embedded one test/setup started. */
export function serverUrl (): string {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL
  try {
    return readFileSync(databaseUrlFile(runDir()), 'utf8').trim()
  } catch {
    throw new Error('No test database: run the tests with `pnpm test` (it starts one), or set TEST_DATABASE_URL.')
  }
}

/** A fresh, empty database for one test file, dropped at teardown. */
export async function createTestDatabase (t: Test): Promise<string> {
  const name = `pond_test_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name}`)
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  const url = new URL(serverUrl())
  url.pathname = `/${name}`
  return url.toString()
}

export function adminQuery (sql: string, params: unknown[] = []) {
  return query(serverUrl(), sql, params)
}

/** Runs one query against `url` and closes the connection. */
export async function query (url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}
