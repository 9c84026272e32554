// `pnpm user:admin <email>`: gives an existing user Better Auth's admin role. The first admin has to come from
// somewhere other than the admin API; this is it. Compiled to dist/scripts/user-admin.js for `fly ssh console`.
import { parseArgs } from 'node:util'
import { createAuth } from '../src/auth/create-auth.js'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { say, withDatabase } from './script-database.js'

const { positionals } = parseArgs({ allowPositionals: true })

class UsageError extends Error {}

async function main (): Promise<number> {
  const email = positionals[0]?.trim().toLowerCase()
  if (email === undefined || positionals.length !== 1 || !email.includes('@')) {
    throw new UsageError('Usage: pnpm user:admin <email>')
  }
  const config = loadConfig({ dotenv: process.env.NODE_ENV !== 'production' })
  return withDatabase(config, async (pool) => {
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
  })
}

try {
  process.exitCode = await main()
} catch (error) {
  const known = error instanceof ConfigError || error instanceof UsageError
  process.stderr.write(`${known ? (error as Error).message : `Could not grant the admin role: ${(error as Error).message}`}\n`)
  process.exitCode = 1
}
