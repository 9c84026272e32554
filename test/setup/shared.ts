import { join } from 'node:path'
import { projectRoot } from '../../src/config/index.js'

// Without TEST_DATABASE_URL the suite starts one embedded PostgreSQL per run. tap starts the setup script and every
// test file from the same runner process, so its pid names the run: two runs in one checkout do not collide.
export const testRunsDir = join(projectRoot, '.data', 'test')
export const runDir = (runnerPid = process.ppid) => join(testRunsDir, `run-${runnerPid}`)
export const databaseUrlFile = (dir: string) => join(dir, 'database-url')
