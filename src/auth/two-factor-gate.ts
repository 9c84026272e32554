import type { BetterAuthPlugin } from 'better-auth'
import { APIError, isAPIError } from 'better-auth/api'
import type { twoFactor } from 'better-auth/plugins/two-factor'

/**
 * Every way in that opens a session without a password. Better Auth's two-factor plugin asks for the second factor
 * after the password sign-ins only (/sign-in/email, /sign-in/username, /sign-in/phone-number), so a user with TOTP
 * on who signed in through a provider, or with an emailed link, got a full session: whoever controls the mailbox
 * could open a provider account with the address and get in without password or code. New ways in (magic links,
 * emailed codes) belong here too.
 */
export const WAYS_IN_WITHOUT_PASSWORD = new Set([
  // The provider's redirect back to us (a browser navigation: answered with a redirect).
  '/callback/:id',
  // A provider's ID token posted by the frontend (answered with JSON).
  '/sign-in/social',
  // An emailed verification link signs in (autoSignInAfterVerification).
  '/verify-email'
])

/** The user whose sign-in this gate sent to the code page, by the request's AuthContext (for the audit trail). */
const waitingForCode = new WeakMap<object, string>()
export const userWaitingForCode = (authContext: object): string | undefined => waitingForCode.get(authContext)

type TwoFactorPlugin = ReturnType<typeof twoFactor>
type AfterHook = NonNullable<NonNullable<TwoFactorPlugin['hooks']>['after']>[number]
type HookResult = { response?: unknown, headers?: Headers | null } | undefined
/** What a hook that changes nothing answers: Better Auth reads `headers` of every hook's result. */
const NOTHING = { response: undefined, headers: null }

/**
 * Applies the two-factor plugin's own sign-in step (trusted devices, the pending-sign-in cookie, its attempt counter)
 * to the ways in above: the session just opened is withdrawn and the user is asked for a code. Where the endpoint
 * answered with a redirect (a browser navigation), the browser is sent to the frontend's code page instead, with
 * where it was going as `callbackURL`; where it answered JSON, the answer is the plugin's own
 * `{twoFactorRedirect: true, twoFactorMethods}`.
 */
export function twoFactorOnEveryWayIn (plugin: TwoFactorPlugin, { codePage }: { codePage: string }) {
  const [signInStep] = plugin.hooks.after as AfterHook[]
  if (signInStep === undefined) throw new Error('better-auth\'s two-factor plugin has no sign-in hook: check its version')
  type Session = { user: { id: string }, session: { id: string } }
  type HookContext = { context: { returned?: unknown, responseHeaders?: Headers, newSession?: Session | null, session?: Session | null } }
  const handler = async (context: HookContext) => {
    const { returned, newSession, session } = context.context
    // Only a session this request opened: verifying an address while signed in refreshes the session it came with.
    if (!newSession || newSession.session.id === session?.session.id) return NOTHING
    const result = await (signInStep.handler as unknown as (ctx: unknown) => Promise<HookResult>)(context)
    const response = result?.response as { twoFactorRedirect?: unknown } | undefined
    if (response?.twoFactorRedirect !== true) return result ?? NOTHING
    waitingForCode.set(context.context, newSession.user.id)
    const destination = redirectLocation(returned)
    if (destination === undefined) return result
    const page = new URL(codePage)
    page.searchParams.set('callbackURL', destination)
    // The endpoint's own Location is already among the response's headers: replace it there.
    context.context.responseHeaders?.set('location', page.href)
    return { response: new APIError('FOUND', undefined, { location: page.href }), headers: result?.headers ?? null }
  }
  return {
    id: 'two-factor-on-every-way-in',
    hooks: {
      after: [{
        matcher: (context) => WAYS_IN_WITHOUT_PASSWORD.has(context.path ?? ''),
        handler: handler as unknown as AfterHook['handler']
      }]
    }
  } satisfies BetterAuthPlugin
}

/** Where a redirect answer (an APIError with status 302, or a Response) sends the browser. */
function redirectLocation (returned: unknown): string | undefined {
  if (isAPIError(returned) && returned.statusCode >= 300 && returned.statusCode < 400) {
    return new Headers(returned.headers as HeadersInit).get('location') ?? undefined
  }
  if (returned instanceof Response && returned.status >= 300 && returned.status < 400) {
    return returned.headers.get('location') ?? undefined
  }
  return undefined
}
