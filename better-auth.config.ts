// For Better Auth's own CLI (`npx auth generate --config better-auth.config.ts`, Node >= 22.12): the same instance
// the server uses, built from the same configuration. Set DATABASE_URL first; the CLI does not start a database.
import { createAuth } from './src/auth/create-auth.js'
import { loadConfig } from './src/config/index.js'
import { createPool, resolveDatabaseUrl } from './src/db/pool.js'

const config = loadConfig({ dotenv: process.env.NODE_ENV !== 'production' })
if (config.databaseUrl === undefined) {
  throw new Error('DATABASE_URL is not set: Better Auth\'s CLI needs a database to inspect (see .env.example).')
}
const { url } = resolveDatabaseUrl(config.databaseUrl, { onFly: config.flyAppName !== undefined })

export const auth = createAuth(config, createPool(url, { log: console }))
export default auth
