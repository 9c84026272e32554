// `pnpm user:admin <email>`: gives an existing user Better Auth's admin role. The first admin has to come from
// somewhere other than the admin API; this is it. Compiled to dist/scripts/user-admin.js for `fly ssh console`.
import { parseArgs } from 'node:util'
import { createAuth } from '../src/auth/create-auth.js'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { openDatabase } from '../src/db/open-database.js'
import { createPool } from '../src/db/pool.js'

const { positionals } = parseArgs({ allowPositionals: true })
const say = (line: string) => process.stdout.write(`${line}\n`)
const sayLog = (fieldsOrMessage: unknown, message?: string) => say(message ?? String(fieldsOrMessage))
const log = { info: sayLog, warn: sayLog, error: sayLog }

class UsageError extends Error {}

async function main (): Promise<number> {
  const email = positionals[0]?.trim().toLowerCase()
  if (email === undefined || positionals.length !== 1 || !email.includes('@')) {
    throw new UsageError('Usage: pnpm user:admin <email>')
  }
  const config = loadConfig({ dotenv: process.env.NODE_ENV !== 'production' })
  const database = await openDatabase(config, log)
  const pool = createPool(database.url, { log, max: 1 })
  try {
    const { internalAdapter } = await createAuth(config, pool).$context
    const found = await internalAdapter.findUserByEmail(email)
    if (found === null) throw new UsageError(`No user with the email ${email}: sign up first, then run this again.`)
    if ((found.user as { role?: string | null }).role === 'admin') {
      say(`${email} is already an admin.`)
      return 0
    }
    await internalAdapter.updateUser(found.user.id, { role: 'admin' })
    say(`${email} is now an admin.`)
    return 0
  } finally {
    await pool.end()
    await database.stop()
  }
}

try {
  process.exitCode = await main()
} catch (error) {
  const known = error instanceof ConfigError || error instanceof UsageError
  process.stderr.write(`${known ? (error as Error).message : `Could not grant the admin role: ${(error as Error).message}`}\n`)
  process.exitCode = 1
}
