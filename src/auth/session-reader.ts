import { getAuthTables, parseSessionOutput, parseUserOutput } from 'better-auth/db'
import type { Pool } from 'pg'
// better-call is Better Auth's HTTP layer: reading cookies with its parser (the first cookie of a name wins, values
// URL-decoded when they can be) picks the same session Better Auth would.
import { parseCookies } from 'better-call'
import { verifiedValue } from './cookie-signature.js'
import type { Auth } from './create-auth.js'

/** Better Auth's getSession result: the session (token included) and its user. */
export type SessionWithUser = NonNullable<Awaited<ReturnType<Auth['api']['getSession']>>>
type SessionRow = Record<string, unknown> & { expiresAt: Date }

/**
 * What the session cookie of a request amounts to:
 * - `none`: no session cookie, or one whose signature is wrong. Better Auth answers `null` here and writes nothing.
 * - `valid`: a live session that needs no refresh, exactly as Better Auth's get-session would return it.
 *   A user under an active ban gets `none` instead.
 * - `ask-better-auth`: anything that makes Better Auth write (a refresh that is due, an expired or unknown session
 *   whose cookie it deletes). Better Auth handles those.
 *
 * A cookie-cache cookie (`session_data`) is ignored: we configure no `session.cookieCache`, without which Better Auth
 * ignores it too (with one, this reader would still check the database, never the cookie). Better Auth would also
 * answer with a Set-Cookie clearing it; asking it for that gave any client that sends the cookie Better Auth's slow
 * path, twice the work of a fast read (test/redis-sessions.test.ts), for a cookie nothing reads.
 */
export type SessionRead =
  | { kind: 'none' }
  | { kind: 'valid', value: SessionWithUser }
  | { kind: 'ask-better-auth' }

export interface ReadOptions {
  /** Better Auth's `disableRefresh` query option: the session is served as it is, even when a refresh is due. */
  disableRefresh?: boolean
}

/**
 * Reads the session of a Cookie header the way Better Auth's get-session does, at the cost of one query.
 * Better Auth's own path, measured under load, spends ~20x the database work (per-request router and context set-up,
 * an HMAC check through WebCrypto that queues on the libuv pool behind password hashing, Kysely); see
 * docs/BENCHMARKS.md. Here the cookie signature is checked with a synchronous HMAC and the session and its user come
 * from one query. Every case in which Better Auth would write is left to Better Auth, so semantics (sliding expiry,
 * deletion of expired sessions, revocation, cookie clean-up) stay its own. test/session-reader.test.ts compares
 * the two answer for answer.
 */
export async function createSessionReader (auth: Auth, pool: Pool, previousSecrets: string[] = []) {
  const context = await auth.$context
  const { options, authCookies, sessionConfig } = context
  const sessionOptions: { disableSessionRefresh?: boolean, deferSessionRefresh?: boolean } =
    (options.session ?? {}) as object
  // Better Auth signs with its current secret; cookies signed by an older listed one are accepted while a rotation
  // is under way (see acceptPreviousSecrets in ./create-auth.ts).
  const keys = [context.secret, ...previousSecrets]
  const refreshDisabled = sessionOptions.disableSessionRefresh === true || sessionOptions.deferSessionRefresh === true

  const tables = getAuthTables(options)
  const session = tables.session!
  const user = tables.user!
  // Every schema field of both tables (plugins included), as the adapter would read them, under unambiguous aliases.
  const columns = (alias: string, fields: Record<string, { fieldName?: string }>) => Object.entries({ id: {} as { fieldName?: string }, ...fields })
    .map(([key, field]) => `${alias}.${quote(field.fieldName ?? key)} AS ${quote(`${alias}.${key}`)}`)
  const sessionKeys = ['id', ...Object.keys(session.fields)]
  const userKeys = ['id', ...Object.keys(user.fields)]
  // Unnamed: a named prepared statement lives on one server connection, and through PgBouncer in transaction mode
  // the next query may run on another that lacks it, or already has it (docs/BENCHMARKS.md measures the cost).
  const query = {
    text: `SELECT ${[...columns('s', session.fields), ...columns('u', user.fields)].join(', ')} ` +
      `FROM ${quote(session.modelName)} s JOIN ${quote(user.modelName)} u ` +
      `ON u.${quote(user.fields.id?.fieldName ?? 'id')} = s.${quote(session.fields.userId!.fieldName ?? 'userId')} ` +
      `WHERE s.${quote(session.fields.token!.fieldName ?? 'token')} = $1`
  }

  return async function readSession (cookieHeader: string | undefined, { disableRefresh = false }: ReadOptions = {}): Promise<SessionRead> {
    if (cookieHeader === undefined || cookieHeader === '') return { kind: 'none' }
    const cookies = parseCookies(cookieHeader)
    const token = verifiedValue(cookies.get(authCookies.sessionToken.name), keys)
    if (token === undefined) return { kind: 'none' }

    const { rows } = await pool.query({ ...query, values: [token] })
    const row = rows[0] as Record<string, unknown> | undefined
    if (row === undefined) return { kind: 'ask-better-auth' }
    const found = {
      session: pick(row, 's.', sessionKeys) as SessionRow,
      user: pick(row, 'u.', userKeys)
    }
    const now = Date.now()
    if (found.session.expiresAt.getTime() < now) return { kind: 'ask-better-auth' }
    // Banning revokes a user's sessions. A session that survived a ban (one written straight into the database,
    // which Better Auth would still serve) is refused too: a banned user is signed out everywhere.
    if (isBanned(found.user, now)) return { kind: 'none' }

    const dontRememberMe = verifiedValue(cookies.get(authCookies.dontRememberToken.name), keys) !== undefined
    const refreshDue = found.session.expiresAt.getTime() - sessionConfig.expiresIn * 1000 + sessionConfig.updateAge * 1000 <= now
    if (refreshDue && !dontRememberMe && !disableRefresh && !refreshDisabled) return { kind: 'ask-better-auth' }

    return {
      kind: 'valid',
      value: {
        session: parseSessionOutput(options, found.session as never),
        user: parseUserOutput(options, found.user as never)
      } as SessionWithUser
    }
  }
}

export type ReadSession = Awaited<ReturnType<typeof createSessionReader>>


function isBanned (user: Record<string, unknown>, now: number): boolean {
  if (user.banned !== true) return false
  return !(user.banExpires instanceof Date) || user.banExpires.getTime() > now
}

function pick (row: Record<string, unknown>, prefix: string, keys: string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {}
  for (const key of keys) picked[key] = row[prefix + key]
  return picked
}

function quote (identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`
}
