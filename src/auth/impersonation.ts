import type { BetterAuthPlugin } from 'better-auth'
import { APIError, createAuthMiddleware, isAPIError } from 'better-auth/api'

type Session = { id: string, token?: string, expiresAt: Date, impersonatedBy?: string | null }
type DbHookContext = { context?: { session?: { session: Session } | null } } | null

/**
 * Better Auth's admin plugin hides impersonation sessions from the user's /list-sessions, so the user could neither
 * see nor revoke a session an admin holds on their account. That filter is removed: each one is listed with its
 * `impersonatedBy`.
 */
export function withImpersonationShown<Plugin extends BetterAuthPlugin> (plugin: Plugin): Plugin {
  const hooks = plugin.hooks
  if (hooks?.after) hooks.after = hooks.after.filter((hook) => !hook.matcher({ path: '/list-sessions' } as Parameters<typeof hook.matcher>[0]))
  return plugin
}

/**
 * Limits on impersonation sessions:
 * - An impersonation lasts its hour. Better Auth marks it "don't remember" with a cookie only; a browser that drops
 *   the cookie had the session refreshed like any other, to 7 days and sliding. Its end is never moved later.
 * - Admins list a user's sessions without their tokens (a token is the session: listing them was a takeover without
 *   even impersonating) and revoke one by `sessionId`.
 */
export function impersonationLimits () {
  return {
    id: 'impersonation-limits',
    init () {
      return {
        options: {
          databaseHooks: {
            session: {
              update: {
                before: async (data: Partial<Session> & Record<string, unknown>, ctx: DbHookContext) => {
                  // The session being refreshed is the request's own (Better Auth sets it before it refreshes).
                  const current = ctx?.context?.session?.session
                  if (!current?.impersonatedBy || !(data.expiresAt instanceof Date)) return
                  const end = new Date(current.expiresAt)
                  if (data.expiresAt > end) return { data: { ...data, expiresAt: end } }
                }
              }
            }
          }
        }
      }
    },
    hooks: {
      before: [{
        matcher: (ctx) => ctx.path === '/admin/revoke-user-session',
        handler: createAuthMiddleware(async (ctx) => {
          const sessionId: unknown = ctx.body?.sessionId
          if (sessionId === undefined) return
          const session = typeof sessionId === 'string'
            ? await ctx.context.adapter.findOne<Session>({ model: 'session', where: [{ field: 'id', value: sessionId }] })
            : null
          if (!session?.token) throw new APIError('NOT_FOUND', { code: 'SESSION_NOT_FOUND', message: 'No such session.' })
          const { sessionId: _, ...body } = ctx.body as Record<string, unknown>
          return { context: { body: { ...body, sessionToken: session.token } } }
        })
      }],
      after: [{
        matcher: (ctx) => ctx.path === '/admin/list-user-sessions',
        handler: createAuthMiddleware(async (ctx) => {
          const returned = ctx.context.returned as { sessions?: Array<Record<string, unknown>> } | undefined
          if (isAPIError(returned) || !Array.isArray(returned?.sessions)) return
          return ctx.json({ ...returned, sessions: returned.sessions.map(({ token: _, ...session }) => session) })
        })
      }]
    }
  } satisfies BetterAuthPlugin
}
