import { join } from 'node:path'
import { projectRoot } from '../../src/config/index.js'

// Where the suite's embedded PostgreSQL lives when TEST_DATABASE_URL is not set, and where its URL is written
// for the test files (tap runs each in its own process).
export const testDataDir = join(projectRoot, '.data', 'test')
export const testDatabaseUrlFile = join(testDataDir, 'database-url')
