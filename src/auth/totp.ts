import { createHash } from 'node:crypto'
import type { BetterAuthPlugin } from 'better-auth'
import { APIError, createAuthMiddleware, getSessionFromCtx, isAPIError } from 'better-auth/api'
import { TWO_FACTOR_ERROR_CODES } from 'better-auth/plugins/two-factor'
import type { Pool } from 'pg'

export const USED_TOTP_TABLE = 'totp_used_code'

/**
 * How long an accepted code stays used: Better Auth accepts the codes of the previous, current and next 30 s period,
 * so a code is valid for at most 90 s; kept a little longer than that.
 */
export const USED_TOTP_SECONDS = 120

const VERIFY_TOTP = '/two-factor/verify-totp'

const schema = {
  totpUsedCode: {
    modelName: USED_TOTP_TABLE,
    fields: {
      userId: { type: 'string', required: true, input: false },
      expiresAt: { type: 'date', required: true, input: false }
    },
    indexes: [{ fields: ['expiresAt'], name: 'totp_used_code_expires_idx' }]
  }
} satisfies BetterAuthPlugin['schema']

type Ctx = Parameters<Parameters<typeof createAuthMiddleware>[0]>[0]

/**
 * A TOTP code is used once (RFC 6238 §5.2, OWASP ASVS V2.8.4). Better Auth keeps no record of accepted codes, so
 * whoever saw a code (over a shoulder, through a phishing page) could use it again within its window. Before
 * Better Auth checks a code, the code is claimed for its user in PostgreSQL, atomically, so that every machine sees
 * the claim and two requests racing with one code cannot both pass; a claim whose check failed is given back.
 * Better Auth's own checks (window, attempts, lockout) all still run. The row's id is a hash: no code is stored.
 */
export function totpSingleUse ({ pool }: { pool: Pool }) {
  const claims = new WeakMap<object, string>()
  return {
    id: 'totp-single-use',
    schema,
    hooks: {
      before: [{
        matcher: (ctx) => ctx.path === VERIFY_TOTP,
        handler: createAuthMiddleware(async (ctx) => {
          const code: unknown = ctx.body?.code
          const userId = typeof code === 'string' ? await codeOwner(ctx) : undefined
          if (userId === undefined) return // Better Auth refuses it
          const id = createHash('sha256').update(`${userId}\0${code as string}`).digest('base64url')
          const { rowCount } = await pool.query(
            `WITH expired AS (DELETE FROM ${USED_TOTP_TABLE} WHERE "expiresAt" < now())
             INSERT INTO ${USED_TOTP_TABLE} (id, "userId", "expiresAt") VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (id) DO UPDATE SET "expiresAt" = EXCLUDED."expiresAt" WHERE ${USED_TOTP_TABLE}."expiresAt" < now()`,
            [id, userId, USED_TOTP_SECONDS])
          if (rowCount === 0) throw new APIError('UNAUTHORIZED', { code: 'INVALID_CODE', message: TWO_FACTOR_ERROR_CODES.INVALID_CODE.message })
          claims.set(ctx.request ?? ctx.context, id)
        })
      }],
      after: [{
        matcher: (ctx) => ctx.path === VERIFY_TOTP,
        handler: createAuthMiddleware(async (ctx) => {
          const id = claims.get(ctx.request ?? ctx.context)
          const returned = ctx.context.returned
          if (id !== undefined && isAPIError(returned) && returned.statusCode >= 400) {
            await pool.query(`DELETE FROM ${USED_TOTP_TABLE} WHERE id = $1`, [id])
          }
        })
      }]
    }
  } satisfies BetterAuthPlugin
}

/**
 * Whose code this is, decided as Better Auth's verify-totp decides it: the signed-in user (enrolling), else the user
 * of the pending sign-in that the two_factor cookie names.
 */
async function codeOwner (ctx: Ctx): Promise<string | undefined> {
  const session = await getSessionFromCtx(ctx)
  if (session) return session.user.id
  const identifier = await ctx.getSignedCookie(ctx.context.createAuthCookie('two_factor').name, ctx.context.secret)
  if (identifier) return (await ctx.context.internalAdapter.findVerificationValue(identifier))?.value ?? undefined
  return undefined
}

/**
 * The Key URI Format wants the issuer parameter percent-encoded (RFC 3986); Better Auth builds it with
 * URLSearchParams, which writes a space as "+", and authenticator apps then show "Pond+Security+QA". The URI is
 * rewritten in Better Auth's answers that carry it.
 */
export function totpIssuerEncoding () {
  return {
    id: 'totp-issuer-encoding',
    hooks: {
      after: [{
        matcher: (ctx) => ctx.path === '/two-factor/enable' || ctx.path === '/two-factor/get-totp-uri',
        handler: createAuthMiddleware(async (ctx) => {
          const returned = ctx.context.returned as { totpURI?: unknown } | undefined
          if (isAPIError(returned) || typeof returned?.totpURI !== 'string') return
          return ctx.json({ ...returned, totpURI: withEncodedIssuer(returned.totpURI) })
        })
      }]
    }
  } satisfies BetterAuthPlugin
}

export function withEncodedIssuer (uri: string): string {
  const url = new URL(uri)
  const issuer = url.searchParams.get('issuer')
  if (issuer === null) return uri
  return uri.replace(/([?&]issuer=)[^&]*/, `$1${encodeURIComponent(issuer)}`)
}
