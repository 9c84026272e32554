import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js'
import { testDatabaseUrlFile, testDataDir } from './shared.js'

if (process.env.TEST_DATABASE_URL) {
  rmSync(testDatabaseUrlFile, { force: true })
  console.log('# tests use TEST_DATABASE_URL')
} else {
  mkdirSync(testDataDir, { recursive: true })
  const log = { info () {}, warn (_: unknown, message?: string) { console.log(`# ${message}`) } }
  // pg_ctl detaches the server, so it outlives this process; stop-database.ts stops it after the run.
  const { url } = await startEmbeddedPostgres({ baseDir: testDataDir, log })
  writeFileSync(testDatabaseUrlFile, url, { mode: 0o600 })
  console.log('# tests use an embedded PostgreSQL (set TEST_DATABASE_URL to use your own)')
}
