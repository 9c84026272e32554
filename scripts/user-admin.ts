// `pnpm user:admin [--allow-unverified] <email>`: gives an existing user Better Auth's admin role. The first admin has
// to come from somewhere other than the admin API; this is it. Compiled to dist/scripts/user-admin.js for
// `fly ssh console`.
import { parseArgs } from 'node:util'
import { createAuth } from '../src/auth/create-auth.js'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { say, withDatabase } from './script-database.js'

class UsageError extends Error {}

const USAGE = 'Usage: pnpm user:admin [--allow-unverified] <email>'

function parseCommandLine () {
  try {
    const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'allow-unverified': { type: 'boolean' } } })
    const email = positionals[0]?.trim().toLowerCase()
    if (email !== undefined && positionals.length === 1 && email.includes('@')) {
      return { email, allowUnverified: values['allow-unverified'] === true }
    }
  } catch {} // parseArgs' unknown-option error: the usage line says more than its stack trace.
  throw new UsageError(USAGE)
}

/** Roles as Better Auth's admin plugin stores them: comma-separated ("user,editor"). */
const rolesOf = (role: unknown) => typeof role === 'string' ? role.split(',').map((part) => part.trim()).filter((part) => part !== '') : []

async function main (): Promise<number> {
  const { email, allowUnverified } = parseCommandLine()
  const config = loadConfig({ dotenv: process.env.NODE_ENV !== 'production' })
  return withDatabase(config, async (pool) => {
    const { internalAdapter } = await createAuth(config, pool).$context
    const found = await internalAdapter.findUserByEmail(email)
    if (found === null) throw new UsageError(`No user with the email ${email}: sign up first, then run this again.`)
    const roles = rolesOf((found.user as { role?: unknown }).role)
    if (roles.includes('admin')) {
      say(`${email} is already an admin.`)
      return 0
    }
    // Anyone can sign up with the address the operator means to promote before its owner does: only an address
    // someone has proven to own becomes an admin, unless the operator knows who signed up.
    if (!found.user.emailVerified && !allowUnverified) {
      throw new UsageError(`${email} has not verified its email address, so whoever signed up with it would become ` +
        'admin: verify it first, or pass --allow-unverified if you know who did.')
    }
    // Added, not set: the user keeps the roles it has.
    await internalAdapter.updateUser(found.user.id, { role: [...roles, 'admin'].join(',') })
    say(`${email} is now an admin${found.user.emailVerified ? '' : ' (its email address is not verified)'}.`)
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
