// The audit trail: security events written to the audit_event table, from Better Auth's own hooks, so every way in
// (HTTP, auth.api calls, admin endpoints) is recorded the same way.
import { randomUUID } from 'node:crypto'
import { isIP } from 'node:net'
import type { BetterAuthPlugin } from 'better-auth'
import { createAuthMiddleware, isAPIError } from 'better-auth/api'
import type { FastifyBaseLogger } from 'fastify'
import type { Pool } from 'pg'
import { CLIENT_IP_HEADER } from '../client-ip.js'
import { requestLog } from '../logger.js'
import { settleWithin } from '../settle-within.js'
import { userWaitingForCode } from './two-factor-gate.js'

export const AUDIT_TABLE = 'audit_event'

/** Every event type, with what produces it (see the README's "Audit trail"). */
export const AUDIT_EVENT_TYPES = [
  'sign_up',
  'sign_in.succeeded',
  'sign_in.failed',
  'sign_in.second_factor_required',
  'sign_out',
  'session.revoked',
  'password.changed',
  'password.reset',
  'email.change_requested',
  'email.changed',
  'email.verified',
  'two_factor.enabled',
  'two_factor.disabled',
  'role.changed',
  'user.banned',
  'user.unbanned',
  'impersonation.started',
  'account.deletion_requested',
  'account.deleted'
] as const

export type AuditEventType = typeof AUDIT_EVENT_TYPES[number]

/** Details are small and never hold secrets: no passwords, tokens, codes, cookies, links or email addresses. */
export type AuditDetail = Record<string, string | number | boolean | null>

export interface AuditEvent {
  type: AuditEventType
  userId: string | null
  detail?: AuditDetail
}

// A request never waits longer than this for its event; a slower write finishes (or fails) in the background.
const WRITE_WAIT_MS = 500

/**
 * The table, as a Better Auth schema so `pnpm migrate` (getMigrations) creates it and /health/ready reports it
 * missing. userId is deliberately not a foreign key: events outlive the account they describe.
 */
const schema = {
  auditEvent: {
    modelName: AUDIT_TABLE,
    fields: {
      type: { type: 'string', required: true, input: false },
      userId: { type: 'string', required: false, input: false },
      createdAt: { type: 'date', required: true, input: false, defaultValue: () => new Date() },
      ipAddress: { type: 'string', required: false, input: false },
      userAgent: { type: 'string', required: false, input: false },
      detail: { type: 'json', required: false, input: false }
    },
    indexes: [
      // A user's events and an admin's filters, newest first; createdAt alone for the admin listing and pruning.
      { fields: ['userId', 'createdAt'], name: 'audit_event_user_created_idx' },
      { fields: ['type', 'createdAt'], name: 'audit_event_type_created_idx' },
      { fields: ['createdAt'], name: 'audit_event_created_idx' }
    ]
  }
} satisfies BetterAuthPlugin['schema']

/**
 * Writes events. A failed write is logged (type and error only) and never reaches the request it describes. Writes
 * still running are in `pending`: a write left queued when the pool ends would never settle, so closing waits for
 * them first (src/plugins/auth.ts).
 */
export function createAuditWriter (pool: Pool, log?: FastifyBaseLogger, pending = new Set<Promise<void>>()) {
  return async function record (event: AuditEvent, request: { ipAddress: string | null, userAgent: string | null }) {
    const write: Promise<void> = pool.query(
      `INSERT INTO ${AUDIT_TABLE} (id, type, "userId", "createdAt", "ipAddress", "userAgent", detail)
       VALUES ($1, $2, $3, clock_timestamp(), $4, $5, $6::jsonb)`,
      [randomUUID(), event.type, event.userId, request.ipAddress, request.userAgent, JSON.stringify(event.detail ?? {})]
    ).then(() => {}, (error: Error & { code?: string }) => {
      requestLog(log)?.error({ err: { code: error.code, message: error.message }, auditEvent: event.type }, 'audit event not written')
    })
    pending.add(write)
    void write.finally(() => pending.delete(write))
    await settleWithin([write], WRITE_WAIT_MS)
  }
}

type Ctx = {
  path?: string
  body?: unknown
  params?: Record<string, string | undefined>
  headers?: Headers
  request?: Request
  context: {
    session?: { user: { id: string }, session: { id: string, impersonatedBy?: string | null } } | null
    newSession?: { user: { id: string }, session: { id: string } } | null
    returned?: unknown
    internalAdapter: {
      findUserByEmail: (email: string) => Promise<{ user: { id: string } } | null>
      findVerificationValue: (identifier: string) => Promise<{ value: string } | null>
    }
    createAuthCookie: (name: string) => { name: string }
    secret: string
  }
  getSignedCookie?: (name: string, secret: string) => Promise<string | null | false>
}

/** The client as Better Auth saw it: our auth route always sets CLIENT_IP_HEADER to the trusted address. */
function requestOf (ctx: Pick<Ctx, 'headers' | 'request'> | null | undefined) {
  const headers = ctx?.headers ?? ctx?.request?.headers
  const ip = headers?.get(CLIENT_IP_HEADER)?.trim()
  const userAgent = headers?.get('user-agent')
  return {
    ipAddress: ip !== undefined && isIP(ip) !== 0 ? ip : null,
    userAgent: userAgent ? userAgent.slice(0, 512) : null
  }
}

const bodyField = (ctx: Ctx, name: string): unknown => (ctx.body as Record<string, unknown> | undefined)?.[name]
const textField = (ctx: Ctx, name: string) => {
  const value = bodyField(ctx, name)
  return typeof value === 'string' ? value : undefined
}

/** An endpoint's result: an APIError (status and code) or a success. A redirect (302) counts as success. */
function outcome (ctx: Ctx): { ok: true } | { ok: false, status: number, code: string } {
  const returned = ctx.context.returned
  if (!isAPIError(returned)) return { ok: true }
  if (returned.statusCode >= 300 && returned.statusCode < 400) return { ok: true }
  const body = returned.body as { code?: unknown } | undefined
  return { ok: false, status: returned.statusCode, code: typeof body?.code === 'string' ? body.code : returned.status.toString() }
}

/** The signed-in user acting on someone else (an admin), for the detail's actorId. */
function actor (ctx: Ctx | null | undefined, subjectId: string | null): AuditDetail {
  const actorId = ctx?.context?.session?.user.id
  return actorId !== undefined && actorId !== subjectId ? { actorId } : {}
}

const SIGN_IN_PATHS = new Set(['/sign-in/email', '/sign-in/social', '/sign-up/email', '/callback/:id', '/verify-email'])
const SECOND_FACTOR_PATHS: Record<string, string> = {
  '/two-factor/verify-totp': 'totp',
  '/two-factor/verify-backup-code': 'backup_code',
  '/two-factor/verify-otp': 'otp'
}
const REVOCATIONS: Record<string, string> = {
  '/revoke-session': 'one',
  '/revoke-other-sessions': 'others',
  '/revoke-sessions': 'all',
  '/admin/revoke-user-session': 'one',
  '/admin/revoke-user-sessions': 'all'
}

function signInMethod (ctx: Ctx): string {
  switch (ctx.path) {
    case '/sign-in/email':
    case '/sign-up/email':
      return 'email'
    case '/sign-in/social':
      return textField(ctx, 'provider') ?? 'social'
    case '/callback/:id':
      return ctx.params?.id ?? 'social'
    case '/verify-email':
      return 'email_verification'
    default:
      return 'unknown'
  }
}

/** The user-update fields that make an event, remembered from `update.before` until `update.after`. */
const WATCHED_USER_FIELDS = ['email', 'emailVerified', 'twoFactorEnabled', 'role', 'banned'] as const
type WatchedChange = Partial<Record<typeof WATCHED_USER_FIELDS[number], unknown>>

export interface AuditTrailOptions {
  pool: Pool
  log?: FastifyBaseLogger
  /** Where writes still running are kept (see createAuditWriter). */
  pendingWrites?: Set<Promise<void>>
  /** Endpoints that check a signed-in user's password: a wrong one is recorded as a failed sign-in. */
  passwordChecks?: readonly string[]
}

export function auditTrail ({ pool, log, pendingWrites, passwordChecks = [] }: AuditTrailOptions) {
  const passwordCheckPaths = new Set(passwordChecks)
  const write = createAuditWriter(pool, log, pendingWrites)
  // Updates of one request run one after the other, so before/after pair up in order. Keyed by the request's
  // AuthContext; calls outside any request share one queue.
  const pendingUpdates = new WeakMap<object, WatchedChange[]>()
  const outsideRequest = {}
  // What a request learned in a database hook for its after hook (the user of a password reset).
  const resetUsers = new WeakMap<object, string>()

  // A write never rejects (the writer logs its failure); callers run inside safely().
  // Whatever an impersonated session does names the admin behind it (Better Auth keeps it on the session).
  const emit = (ctx: Ctx | null | undefined, event: AuditEvent) => {
    const impersonatedBy = ctx?.context?.session?.session.impersonatedBy
    return write(impersonatedBy ? { ...event, detail: { ...event.detail, impersonatedBy } } : event, requestOf(ctx))
  }
  /** Hook bodies never throw: a failure to audit is logged and the request goes on. */
  const safely = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => async (...args: A) => {
    try {
      await fn(...args)
    } catch (error) {
      requestLog(log)?.error({ err: { message: (error as Error).message } }, 'audit hook failed')
    }
  }

  const afterEndpoint = safely(async (ctx: Ctx) => {
    const path = ctx.path ?? ''
    const result = outcome(ctx)
    const session = ctx.context.session
    const newSession = ctx.context.newSession

    if (passwordCheckPaths.has(path) && !result.ok && result.code === 'INVALID_PASSWORD' && session) {
      return emit(ctx, {
        type: 'sign_in.failed',
        userId: session.user.id,
        detail: { method: 'password_check', endpoint: path, reason: result.code, sessionId: session.session.id }
      })
    }
    // A social sign-in or an emailed link of a user with two-factor on, sent to the code page (./two-factor-gate.ts).
    const waitingUser = userWaitingForCode(ctx.context)
    if (waitingUser !== undefined) {
      return emit(ctx, { type: 'sign_in.second_factor_required', userId: waitingUser, detail: { method: signInMethod(ctx) } })
    }
    if (path === '/sign-in/email') {
      const returned = ctx.context.returned as { twoFactorRedirect?: boolean } | undefined
      if (result.ok && returned?.twoFactorRedirect === true) {
        const userId = await userIdByEmail(ctx)
        return emit(ctx, { type: 'sign_in.second_factor_required', userId, detail: { method: 'email' } })
      }
      if (!result.ok) {
        // The attempted address is not stored; the user id is, when the account exists.
        const userId = await userIdByEmail(ctx)
        return emit(ctx, { type: 'sign_in.failed', userId, detail: { method: 'email', reason: result.code } })
      }
    }
    if (SIGN_IN_PATHS.has(path) && result.ok && newSession && newSession.session.id !== session?.session.id) {
      return emit(ctx, {
        type: 'sign_in.succeeded',
        userId: newSession.user.id,
        detail: { method: signInMethod(ctx), sessionId: newSession.session.id }
      })
    }
    const secondFactor = SECOND_FACTOR_PATHS[path]
    // Without a session before the request, verifying a code completes a sign-in (otherwise it turns 2FA on).
    if (secondFactor !== undefined && !session) {
      if (result.ok && newSession) {
        return emit(ctx, {
          type: 'sign_in.succeeded',
          userId: newSession.user.id,
          detail: { method: 'two_factor', secondFactor, sessionId: newSession.session.id }
        })
      }
      if (!result.ok) {
        return emit(ctx, {
          type: 'sign_in.failed',
          userId: await twoFactorChallengeUser(ctx),
          detail: { method: 'two_factor', secondFactor, reason: result.code }
        })
      }
    }
    if (!result.ok) return
    switch (path) {
      case '/change-password':
        return emit(ctx, {
          type: 'password.changed',
          userId: session?.user.id ?? null,
          detail: { revokedOtherSessions: bodyField(ctx, 'revokeOtherSessions') === true }
        })
      case '/admin/set-user-password': {
        const userId = textField(ctx, 'userId') ?? null
        return emit(ctx, { type: 'password.changed', userId, detail: { ...actor(ctx, userId) } })
      }
      case '/reset-password': {
        const userId = resetUsers.get(ctx.context) ?? null
        return emit(ctx, { type: 'password.reset', userId, detail: { revokedSessions: true } })
      }
      case '/change-email':
        return emit(ctx, { type: 'email.change_requested', userId: session?.user.id ?? null })
      case '/delete-user': {
        // Deleting takes the emailed confirmation; the deletion itself is account.deleted.
        const returned = ctx.context.returned as { message?: unknown } | undefined
        if (returned?.message === 'Verification email sent') {
          return emit(ctx, { type: 'account.deletion_requested', userId: session?.user.id ?? null })
        }
        return
      }
      case '/admin/impersonate-user': {
        const userId = textField(ctx, 'userId') ?? null
        return emit(ctx, { type: 'impersonation.started', userId, detail: { ...actor(ctx, userId) } })
      }
    }
  })

  async function userIdByEmail (ctx: Ctx): Promise<string | null> {
    const email = textField(ctx, 'email')
    if (email === undefined || email.length > 320) return null
    return (await ctx.context.internalAdapter.findUserByEmail(email))?.user.id ?? null
  }

  /** The user whose two-factor challenge this is (the signed two_factor cookie names a verification record). */
  async function twoFactorChallengeUser (ctx: Ctx): Promise<string | null> {
    const identifier = await ctx.getSignedCookie?.(ctx.context.createAuthCookie('two_factor').name, ctx.context.secret)
    if (!identifier) return null
    return (await ctx.context.internalAdapter.findVerificationValue(identifier))?.value ?? null
  }

  const queueFor = (ctx: Ctx | null) => {
    const key = ctx?.context ?? outsideRequest
    let queue = pendingUpdates.get(key)
    if (queue === undefined) pendingUpdates.set(key, queue = [])
    return queue
  }

  const userUpdated = safely(async (user: Record<string, unknown>, ctx: Ctx | null) => {
    const change = queueFor(ctx).shift()
    if (change === undefined || typeof user?.id !== 'string') return
    const userId = user.id
    const by = actor(ctx, userId)
    if ('email' in change) {
      await emit(ctx, { type: 'email.changed', userId, detail: { verified: user.emailVerified === true, ...by } })
    } else if (change.emailVerified === true) {
      await emit(ctx, { type: 'email.verified', userId })
    }
    if ('twoFactorEnabled' in change) {
      await emit(ctx, { type: change.twoFactorEnabled === true ? 'two_factor.enabled' : 'two_factor.disabled', userId, detail: by })
    }
    if ('role' in change) {
      await emit(ctx, { type: 'role.changed', userId, detail: { role: typeof user.role === 'string' ? user.role : null, ...by } })
    }
    if ('banned' in change) {
      if (change.banned === true) {
        const expires = user.banExpires instanceof Date ? user.banExpires.toISOString() : null
        await emit(ctx, { type: 'user.banned', userId, detail: { expiresAt: expires, ...by } })
      } else {
        // Without an actor, the ban expired and Better Auth lifted it at sign-in.
        await emit(ctx, { type: 'user.unbanned', userId, detail: { ...by, expired: Object.keys(by).length === 0 } })
      }
    }
  })

  return {
    id: 'pond-audit-trail',
    schema,
    init () {
      return {
        options: {
          databaseHooks: {
            user: {
              create: {
                after: safely(async (user: { id: string }, ctx: Ctx | null) => {
                  const method = ctx?.path === '/admin/create-user' ? 'admin' : ctx ? signInMethod(ctx) : 'server'
                  await emit(ctx, { type: 'sign_up', userId: user.id, detail: { method, ...actor(ctx, user.id) } })
                })
              },
              update: {
                before: async (data: Record<string, unknown>, ctx: Ctx | null) => {
                  const change: WatchedChange = {}
                  for (const field of WATCHED_USER_FIELDS) if (field in data) change[field] = data[field]
                  // Every update is queued (even one without watched fields) so before and after stay paired.
                  queueFor(ctx).push(change)
                },
                after: userUpdated
              },
              delete: {
                after: safely(async (user: { id: string }, ctx: Ctx | null) => {
                  await emit(ctx, { type: 'account.deleted', userId: user.id, detail: actor(ctx, user.id) })
                })
              }
            },
            session: {
              delete: {
                after: safely(async (deleted: { id: string, userId: string }, ctx: Ctx | null) => {
                  const path = ctx?.path ?? ''
                  if (path === '/sign-out') {
                    return emit(ctx, { type: 'sign_out', userId: deleted.userId, detail: { sessionId: deleted.id } })
                  }
                  const scope = REVOCATIONS[path]
                  if (scope !== undefined) {
                    await emit(ctx, {
                      type: 'session.revoked',
                      userId: deleted.userId,
                      detail: { scope, sessionId: deleted.id, ...actor(ctx, deleted.userId) }
                    })
                  }
                })
              }
            },
            verification: {
              delete: {
                after: safely(async (consumed: { identifier?: string, value?: string }, ctx: Ctx | null) => {
                  // Only the user id is kept: the identifier holds the reset token.
                  if (ctx?.path === '/reset-password' && consumed.identifier?.startsWith('reset-password:') && consumed.value) {
                    resetUsers.set(ctx.context, consumed.value)
                  }
                })
              }
            }
          }
        }
      }
    },
    hooks: {
      after: [{
        matcher: () => true,
        handler: createAuthMiddleware(async (ctx) => { await afterEndpoint(ctx as unknown as Ctx) })
      }]
    }
  } satisfies BetterAuthPlugin
}
