import { existsSync, rmSync } from 'node:fs'
import { stopEmbeddedPostgres } from '../../src/db/embedded-postgres.js'
import { runDir } from './shared.js'

const dir = runDir()
if (existsSync(dir)) {
  await stopEmbeddedPostgres(dir)
  rmSync(dir, { recursive: true, force: true })
}
