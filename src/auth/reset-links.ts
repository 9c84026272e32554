import type { BetterAuthPlugin } from 'better-auth'
import { createAuthMiddleware, isAPIError } from 'better-auth/api'

/** Better Auth keeps each reset link's token as a verification row `reset-password:<token>` whose value is the user. */
const RESET_LINK_PREFIX = 'reset-password:'

type Ctx = Parameters<Parameters<typeof createAuthMiddleware>[0]>[0]

/** The endpoints that set a user's password, and whose password each sets. */
const PASSWORD_CHANGES: Record<string, (ctx: Ctx, resetUser: string | undefined) => string | undefined> = {
  '/reset-password': (_ctx, resetUser) => resetUser,
  '/change-password': (ctx) => ctx.context.session?.user.id,
  '/admin/set-user-password': (ctx) => typeof ctx.body?.userId === 'string' ? ctx.body.userId : undefined
}

/**
 * A new password ends the user's other reset links. Better Auth consumes only the link that was used, so an older
 * link (still in a mailbox, a forwarded mail, a browser's history) could set the password again after a reset or a
 * change. The reset's user is read before Better Auth consumes its token.
 */
export function resetLinksEndWithPasswordChange () {
  const resetUsers = new WeakMap<object, string>()
  return {
    id: 'reset-links-end-with-password-change',
    hooks: {
      before: [{
        matcher: (ctx) => ctx.path === '/reset-password',
        handler: createAuthMiddleware(async (ctx) => {
          const token: unknown = ctx.body?.token ?? ctx.query?.token
          if (typeof token !== 'string' || token === '') return
          const link = await ctx.context.internalAdapter.findVerificationValue(`${RESET_LINK_PREFIX}${token}`)
          if (link) resetUsers.set(ctx.request ?? ctx.context, link.value)
        })
      }],
      after: [{
        matcher: (ctx) => ctx.path !== undefined && ctx.path in PASSWORD_CHANGES,
        handler: createAuthMiddleware(async (ctx) => {
          if (isAPIError(ctx.context.returned)) return
          const userId = PASSWORD_CHANGES[ctx.path]?.(ctx, resetUsers.get(ctx.request ?? ctx.context))
          if (userId === undefined) return
          await ctx.context.adapter.deleteMany({
            model: 'verification',
            where: [
              { field: 'value', value: userId },
              { field: 'identifier', operator: 'starts_with', value: RESET_LINK_PREFIX }
            ]
          })
        })
      }]
    }
  } satisfies BetterAuthPlugin
}
