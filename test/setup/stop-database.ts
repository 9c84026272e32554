import { existsSync, rmSync } from 'node:fs'
import { stopEmbeddedPostgres } from '../../src/db/embedded-postgres.js'
import { testDatabaseUrlFile, testDataDir } from './shared.js'

if (existsSync(testDatabaseUrlFile)) {
  await stopEmbeddedPostgres(testDataDir)
  rmSync(testDatabaseUrlFile, { force: true })
}
