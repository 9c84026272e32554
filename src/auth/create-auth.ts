import { betterAuth, type SecondaryStorage } from 'better-auth'
import { createAuthMiddleware } from 'better-auth/api'
// The plugins' own entry points: 'better-auth/plugins' loads every plugin Better Auth has (memory, start-up time).
import { admin } from 'better-auth/plugins/admin'
import { openAPI } from 'better-auth/plugins/open-api'
import { twoFactor } from 'better-auth/plugins/two-factor'
import type { FastifyBaseLogger } from 'fastify'
import type { Pool } from 'pg'
import { CLIENT_IP_HEADER } from '../client-ip.js'
import type { Config } from '../config/index.js'
import { requestLog, withoutAddresses } from '../logger.js'
import { auditTrail } from './audit-plugin.js'
import type { Mailer } from '../mail/mailer.js'
import { cookieSignature, verifiedValue } from './cookie-signature.js'
import { boundedPasswordHashing, PASSWORD_HASHING, passwordHashingHooks } from './password-hashing.js'
import { impersonationLimits, withImpersonationShown } from './impersonation.js'
import { resetLinksEndWithPasswordChange } from './reset-links.js'
import { totpIssuerEncoding, totpSingleUse } from './totp.js'
import { twoFactorOnEveryWayIn } from './two-factor-gate.js'
import { userFieldRules } from './user-fields.js'
import { confirmEmailChangeMessage, deleteAccountMessage, resetPasswordMessage, verifyEmailMessage } from '../mail/messages.js'

/** How long a session (and its cookie) lives; Better Auth extends it as it is used (sliding expiry). */
export const SESSION_EXPIRES_IN_SECONDS = 7 * 24 * 60 * 60
/** Lifetime of the links in verification and password-reset emails. */
export const EMAIL_LINK_EXPIRES_IN_SECONDS = 60 * 60

/** Where each emailed link lands on the frontend when the client did not name a page (callbackURL/redirectTo). */
export const FRONTEND_PATHS = {
  verifyEmail: '/',
  resetPassword: '/reset-password',
  accountDeleted: '/',
  /** Failed social sign-ins and links land here with ?error=<code>. */
  authError: '/auth-error',
  /** A social sign-in (or a link) of a user with two-factor on lands here to ask for the code, with ?callbackURL=. */
  twoFactor: '/two-factor'
} as const

/**
 * Better Auth's rate limits, per client address and path, counted where every machine sees them (PostgreSQL, or
 * Redis with REDIS_URL). `window` is in seconds. Two-factor endpoints keep the plugin's own 3 per 10 s.
 */
/**
 * The endpoints that check a signed-in user's password (all of them in Better Auth 1.7 and our plugins: a body field
 * `password` or `currentPassword` behind a session; test/rate-limit.test.ts checks the list). Each wrong password is
 * a guess, so each endpoint has the sign-in budget, and the audit trail records it as a failed sign-in.
 */
export const PASSWORD_CHECK_PATHS = [
  '/verify-password',
  '/change-password',
  '/delete-user',
  '/two-factor/enable',
  '/two-factor/disable',
  '/two-factor/get-totp-uri',
  '/two-factor/generate-backup-codes'
] as const

/** The emailed reset link's landing (it redirects to the frontend) and the social providers' callbacks. */
export const RESET_LINK_PATH = '/reset-password/:token'
export const SOCIAL_CALLBACK_PATH = '/callback/:id'

const SIGN_IN_BUDGET = { window: 60, max: 10 }

export const RATE_LIMITS = {
  /** Every other /api/auth endpoint. */
  default: { window: 60, max: 100 },
  customRules: {
    '/sign-in/*': SIGN_IN_BUDGET,
    ...Object.fromEntries(PASSWORD_CHECK_PATHS.map((path) => [path, SIGN_IN_BUDGET])) as Record<typeof PASSWORD_CHECK_PATHS[number], typeof SIGN_IN_BUDGET>,
    '/sign-up/*': { window: 60, max: 5 },
    '/request-password-reset': { window: 300, max: 3 },
    '/reset-password': { window: 300, max: 5 },
    '/send-verification-email': { window: 300, max: 3 },
    '/verify-email': { window: 60, max: 10 },
    // Better Auth would keep a counter per token (its key is the path): src/routes/auth.ts limits this route instead.
    '/reset-password/*': false
  }
} as const

export interface CreateAuthOptions {
  log?: FastifyBaseLogger
  /** Sends the emails; absent where no mail goes out (pnpm migrate, better-auth.config.ts). */
  mailer?: Mailer
  /** Redis, when REDIS_URL is set, without sessions (the server passes it; the schema does not depend on it). */
  secondaryStorage?: SecondaryStorage
  /** Audit writes still running, for the server to wait for before its pool ends. */
  pendingAuditWrites?: Set<Promise<void>>
}

type AuthConfig = Pick<Config, 'auth' | 'app' | 'rateLimit' | 'redisUrl'>

/**
 * The one Better Auth instance, built from the configuration. The server, `pnpm migrate` and
 * better-auth.config.ts (Better Auth's CLI) all call this, so they agree on options, plugins and therefore schema.
 */
export function createAuth (config: AuthConfig, pool: Pool, { log, mailer, secondaryStorage, pendingAuditWrites }: CreateAuthOptions = {}) {
  const { app } = config
  const toFrontend = (url: string, path: string) => frontendLink(url, path, app.frontendURL)
  const twoFactorPlugin = twoFactor({ issuer: app.name })

  return betterAuth({
    appName: app.name,
    // Better Auth's own messages go to our logger (JSON, redacted), not straight to the console. Only the
    // message, without email addresses: its extra arguments can carry request data.
    logger: log === undefined
      ? undefined
      : { level: 'info', log: (level, message) => requestLog(log)[level]({ component: 'better-auth' }, withoutAddresses(message)) },
    database: pool,
    secret: config.auth.secret,
    // Versioned secrets (BETTER_AUTH_SECRETS): the first signs and encrypts; Better Auth decrypts with any listed
    // version, and with `secret` what was encrypted before. Its cookie signatures check the first one only: see
    // acceptPreviousSecrets.
    secrets: config.auth.secrets,
    baseURL: config.auth.baseURL,
    trustedOrigins: config.auth.trustedOrigins,
    emailAndPassword: {
      enabled: true,
      requireEmailVerification: config.auth.requireEmailVerification,
      resetPasswordTokenExpiresIn: EMAIL_LINK_EXPIRES_IN_SECONDS,
      revokeSessionsOnPasswordReset: true,
      // Better Auth's scrypt, bounded: see ./password-hashing.ts. Per-client shares are rate limits too.
      password: boundedPasswordHashing({ ...PASSWORD_HASHING, shareLimit: config.rateLimit ? PASSWORD_HASHING.shareLimit : Infinity }),
      // With verification required, sign-up for an existing address answers with a made-up user. It must carry the
      // defaults the plugins give a new one (admin's role and ban fields, two-factor's flag), or the answer tells who
      // has an account (test/email-flows.test.ts compares the two answers).
      customSyntheticUser: ({ coreFields, additionalFields, id }) => ({
        ...coreFields,
        role: 'user',
        banned: false,
        banReason: null,
        banExpires: null,
        twoFactorEnabled: false,
        ...additionalFields,
        id
      }),
      sendResetPassword: async ({ user, url }) => {
        mailer?.sendLater(resetPasswordMessage(app.name, user, toFrontend(url, FRONTEND_PATHS.resetPassword)))
      }
    },
    emailVerification: {
      sendOnSignUp: true,
      autoSignInAfterVerification: true,
      expiresIn: EMAIL_LINK_EXPIRES_IN_SECONDS,
      // Also used for a new address after change-email: `user.email` is then the new address.
      sendVerificationEmail: async ({ user, url }) => {
        mailer?.sendLater(verifyEmailMessage(app.name, user, toFrontend(url, FRONTEND_PATHS.verifyEmail)))
      }
    },
    user: {
      // A verified user's change is confirmed from the current address first (a stolen session alone cannot move
      // the account), then verified at the new one, which only then replaces the old.
      changeEmail: {
        enabled: true,
        sendChangeEmailConfirmation: async ({ user, newEmail, url }) => {
          mailer?.sendLater(confirmEmailChangeMessage(app.name, user, newEmail, toFrontend(url, FRONTEND_PATHS.verifyEmail)))
        }
      },
      // Deleting takes the emailed confirmation: it works for accounts without a password (social sign-in) too.
      deleteUser: {
        enabled: true,
        sendDeleteAccountVerification: async ({ user, url }) => {
          mailer?.sendLater(deleteAccountMessage(app.name, user, toFrontend(url, FRONTEND_PATHS.accountDeleted)))
        }
      }
    },
    socialProviders: socialProviders(config.auth.socialProviders, config.auth.requireEmailVerification),
    account: {
      // A social sign-in with an address that exists joins that account only when both sides verified it.
      accountLinking: { enabled: true },
      // Provider access and refresh tokens are stored encrypted with BETTER_AUTH_SECRET.
      encryptOAuthTokens: true
    },
    onAPIError: {
      // Failed social sign-ins and links redirect to the frontend, not to an HTML page of this API.
      errorURL: new URL(FRONTEND_PATHS.authError, app.frontendURL).href,
      // Unexpected errors (a lost database connection) reach our error handler, which logs them and answers 503 or
      // 500 with our JSON body, instead of Better Auth printing them to the console and answering an empty 500.
      throw: true
    },
    session: {
      expiresIn: SESSION_EXPIRES_IN_SECONDS,
      // Sessions live in PostgreSQL only, with Redis too: our secondary storage keeps them out of it (a refresh racing
      // a revocation could write a revoked session back into Redis; see ./secondary-storage.ts). Better Auth then
      // reads them from the database, and losing Redis signs nobody out.
      storeSessionInDatabase: true
    },
    secondaryStorage,
    rateLimit: {
      enabled: config.rateLimit,
      storage: config.redisUrl === undefined ? 'database' : 'secondary-storage',
      ...RATE_LIMITS.default,
      customRules: { ...RATE_LIMITS.customRules }
    },
    plugins: [
      // First: a request with a bad user field is refused before any other plugin acts on it.
      userFieldRules(),
      twoFactorPlugin,
      // Before the audit trail, whose hook then sees the sign-in waiting for its code.
      twoFactorOnEveryWayIn(twoFactorPlugin, { codePage: new URL(FRONTEND_PATHS.twoFactor, app.frontendURL).href }),
      totpSingleUse({ pool }),
      totpIssuerEncoding(),
      resetLinksEndWithPasswordChange(),
      withImpersonationShown(admin()),
      impersonationLimits(),
      // /api/auth/open-api/generate-schema and /api/auth/reference
      openAPI(),
      auditTrail({ pool, log, pendingWrites: pendingAuditWrites, passwordChecks: PASSWORD_CHECK_PATHS }),
      passwordHashingHooks()
    ],
    hooks: { before: acceptPreviousSecrets(config.auth.secrets) },
    telemetry: { enabled: false },
    advanced: {
      // Better Auth turns origin checks off when NODE_ENV=test; keep them on everywhere.
      disableOriginCheck: false,
      // Rate limits and session records key on the address our auth route puts here (see src/client-ip.ts).
      ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
      // Better Auth caches a failed schema check per instance, so a machine that served before `pnpm migrate` ran
      // elsewhere would fail until restarted. /health/ready reports pending migrations instead.
      database: { validateSchema: false }
    }
  })
}

export type Auth = ReturnType<typeof createAuth>

/**
 * Better Auth verifies signed cookies (the session above all) with the current secret only, so introducing a new one
 * would sign everyone out. While BETTER_AUTH_SECRETS also lists older secrets, a cookie signed with one of them is
 * re-signed with the current secret before Better Auth reads it; Better Auth then sets a cookie signed with the
 * current secret whenever it refreshes the session. Dropping a secret from the list stops this for it.
 */
function acceptPreviousSecrets (secrets: Config['auth']['secrets']) {
  const [current, ...previous] = (secrets ?? []).map((secret) => secret.value)
  return createAuthMiddleware(async (ctx) => {
    const cookie = ctx.headers?.get('cookie')
    if (current === undefined || previous.length === 0 || !cookie) return
    const resigned = resignCookies(cookie, current, previous)
    if (resigned !== cookie) return { context: { headers: new Headers({ cookie: resigned }) } }
  })
}

/**
 * The Cookie header with every value signed by a previous secret re-signed with the current one.
 */
function resignCookies (header: string, current: string, previous: string[]): string {
  return header.split(';').map((pair) => {
    const eq = pair.indexOf('=')
    if (eq === -1) return pair
    let value: string
    try {
      value = decodeURIComponent(pair.slice(eq + 1).trim())
    } catch {
      return pair
    }
    if (verifiedValue(value, [current]) !== undefined) return pair
    const payload = verifiedValue(value, previous)
    if (payload === undefined) return pair
    return `${pair.slice(0, eq)}=${encodeURIComponent(`${payload}.${cookieSignature(payload, current)}`)}`
  }).join(';')
}

function socialProviders ({ github, google }: Config['auth']['socialProviders'], requireEmailVerification: boolean) {
  // With verification required, a provider that has not verified the address gives no session either.
  return {
    ...(github === undefined ? {} : { github: { ...github, requireEmailVerification } }),
    ...(google === undefined ? {} : { google: { ...google, requireEmailVerification } })
  }
}

/**
 * Emailed links go to Better Auth (which checks the token) and then redirect to `callbackURL`. Better Auth
 * already refuses a callbackURL outside TRUSTED_ORIGINS; when the client sent none (or a path), the redirect would
 * land on this API, so it is pointed at the frontend instead.
 */
export function frontendLink (url: string, defaultPath: string, frontendURL: string): string {
  const link = new URL(url)
  const callbackURL = link.searchParams.get('callbackURL')
  if (callbackURL === null || callbackURL === '' || callbackURL.startsWith('/')) {
    link.searchParams.set('callbackURL', new URL(callbackURL || defaultPath, frontendURL).href)
  }
  return link.href
}
