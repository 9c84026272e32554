import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/db/embedded-postgres.js'
import { databaseUrlFile, runDir, testRunsDir } from './shared.js'

if (process.env.TEST_DATABASE_URL) {
  console.log('# tests use TEST_DATABASE_URL')
} else {
  await removeAbandonedRuns()
  const dir = runDir()
  mkdirSync(dir, { recursive: true })
  const log = { info () {}, warn (_: unknown, message?: string) { console.log(`# ${message}`) } }
  // pg_ctl detaches the server, so it outlives this process; stop-database.ts stops it after the run.
  const { url } = await startEmbeddedPostgres({ baseDir: dir, log })
  writeFileSync(databaseUrlFile(dir), url, { mode: 0o600 })
  console.log('# tests use an embedded PostgreSQL (set TEST_DATABASE_URL to use your own)')
}

/** Runs that were killed before their teardown leave a server and a folder behind. */
async function removeAbandonedRuns () {
  if (!existsSync(testRunsDir)) return
  for (const name of readdirSync(testRunsDir)) {
    const pid = Number(/^run-(\d+)$/.exec(name)?.[1])
    if (!pid || isAlive(pid)) continue
    await stopEmbeddedPostgres(join(testRunsDir, name)).catch(() => {})
    rmSync(join(testRunsDir, name), { recursive: true, force: true })
  }
}

function isAlive (pid: number) {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
