import { randomFill } from 'node:crypto'
import { requestContext } from '@fastify/request-context'
import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism, setPriority } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BetterAuthPlugin } from 'better-auth'
import { APIError, createAuthMiddleware, getSessionFromCtx } from 'better-auth/api'
import { hashPassword, verifyPassword } from 'better-auth/crypto'
import pLimit from 'p-limit'
import { CLIENT_IP_HEADER, clientBudgetKey } from '../client-ip.js'

/**
 * Password hashing with a bound. Better Auth's scrypt (N=16384, r=16) takes ~60 ms of a core and ~32 MB per hash in
 * flight, on libuv's thread pool, which also runs WebCrypto, DNS and file jobs. Unbounded, a burst of sign-ins takes
 * every pool thread (other requests wait behind them) and 32 MB per request (a 256 MB machine is killed).
 * So at most one hash per core runs at a time; the next ones queue, and past the queue's bound a sign-in gets a
 * clear 503 with Retry-After instead of waiting seconds or running the machine out of memory.
 * Same algorithm and stored format as Better Auth's default: existing passwords keep verifying.
 */
const threadPoolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4
const concurrency = Math.max(1, Math.min(availableParallelism(), threadPoolSize - 1))
export const PASSWORD_HASHING = {
  /** One per core, and always one pool thread left for the WebCrypto and DNS jobs of other requests. */
  concurrency,
  /** About a second of hashing per slot (~60 ms a hash): a sign-in waits at most that long before it starts. */
  queueLimit: 16 * concurrency,
  /**
   * Hashes (running or queued) one client address, or one account, may have at once: an eighth of the capacity, so
   * that taking it all needs eight addresses at once, each within its rate limits. A request hashes one at a time.
   */
  shareLimit: Math.max(2, Math.floor(17 * concurrency / 8))
}

export const HASHING_BUSY = {
  code: 'SERVER_BUSY',
  message: 'Too many sign-ins are being processed right now. Try again in a moment.'
} as const

export const HASHING_SHARE_SPENT = {
  code: 'TOO_MANY_PASSWORD_CHECKS',
  message: 'Too many password checks from this client or for this account at once. Try again in a moment.'
} as const

/** Seconds a client should wait after HASHING_BUSY or HASHING_SHARE_SPENT: the queue drains in about a second. */
export const HASHING_RETRY_AFTER_SECONDS = 1

declare module '@fastify/request-context' {
  interface RequestContextData {
    /** Whose share of the hashing a request's hashes count against (set by passwordHashingHooks). */
    hashingShare?: string[]
    /** A sign-up's password and its hash, made before the sign-up's transaction. */
    hashedAhead?: { password: string, hash: string }
    /** change-password's current password and its stored hash, to check before the new one is hashed. */
    checkFirst?: { password: string, hash: string }
    /** A current password already checked, before Better Auth hashes the new one (change-password). */
    verifiedAhead?: { password: string, hash: string }
  }
}

export interface HashingBounds {
  concurrency: number
  queueLimit: number
  /** Infinity turns the shares off (RATE_LIMIT=off). */
  shareLimit?: number
  /** The keys a hash counts against: the request's (passwordHashingHooks). */
  shareOf?: () => string[]
}

export function boundedPasswordHashing ({
  concurrency, queueLimit, shareLimit = PASSWORD_HASHING.shareLimit, shareOf = () => requestContext.get('hashingShare') ?? []
}: HashingBounds = PASSWORD_HASHING) {
  const limit = pLimit(concurrency)
  const inFlight = new Map<string, number>()
  const done = { hashes: 0, verifications: 0 }
  const run = async <T>(job: () => Promise<T>): Promise<T> => {
    const share = shareOf()
    if (share.some((key) => (inFlight.get(key) ?? 0) >= shareLimit)) {
      throw new APIError('TOO_MANY_REQUESTS', { ...HASHING_SHARE_SPENT }, { 'Retry-After': String(HASHING_RETRY_AFTER_SECONDS) })
    }
    if (limit.activeCount >= concurrency && limit.pendingCount >= queueLimit) {
      throw new APIError('SERVICE_UNAVAILABLE', { ...HASHING_BUSY })
    }
    for (const key of share) inFlight.set(key, (inFlight.get(key) ?? 0) + 1)
    try {
      return await limit(job)
    } finally {
      for (const key of share) {
        const left = inFlight.get(key)! - 1
        if (left === 0) inFlight.delete(key)
        else inFlight.set(key, left)
      }
    }
  }
  return {
    hash: async (password: string) => {
      const ahead = takeAhead('hashedAhead', password)
      if (ahead !== undefined) return await ahead
      // Thrown inside Better Auth's endpoint, so that its after hooks (the audit trail) see the wrong password.
      const checkFirst = requestContext.get('checkFirst')
      if (checkFirst !== undefined) {
        requestContext.set('checkFirst', undefined)
        if (!await run(() => { done.verifications++; return verifyPassword(checkFirst) })) throw new APIError('BAD_REQUEST', { code: 'INVALID_PASSWORD', message: 'Invalid password' })
        requestContext.set('verifiedAhead', checkFirst)
      }
      return await run(() => { done.hashes++; return hashPassword(password) })
    },
    verify: ({ hash, password }: { hash: string, password: string }) => {
      const ahead = requestContext.get('verifiedAhead')
      if (ahead?.hash === hash && ahead.password === password) return Promise.resolve(true)
      return run(() => { done.verifications++; return verifyPassword({ hash, password }) })
    },
    /** Hashes running and waiting (for tests and metrics). */
    get load () { return { active: limit.activeCount, pending: limit.pendingCount } },
    /** Hashes and verifications started so far (for tests and metrics). */
    done
  }
}

function takeAhead (key: 'hashedAhead', password: string): string | undefined {
  const ahead = requestContext.get(key)
  if (ahead?.password !== password) return undefined
  requestContext.set(key, undefined)
  return ahead.hash
}

/**
 * The hooks that keep hashing fair and cheap:
 * - Every request's hashes count against its client address and its account (the address it names, or the session
 *   it carries): one session or one address cannot fill the queue that everyone's sign-in waits in.
 * - Better Auth hashes a sign-up's password inside the sign-up's database transaction, so the transaction's pooled
 *   connection was held while the hash waited for its slot: a burst of sign-ups larger than the pool left the rest
 *   waiting for connections, and failing with the pool's timeout (503) on a busy machine. The password is hashed
 *   first, while no connection is held; the sign-up's own call then takes that hash (same request, same password).
 * - change-password hashed the new password before checking the current one: a wrong current password cost two
 *   hashes. The hash of the new one checks the current one first; a right one is not checked twice.
 * Passwords outside Better Auth's length bounds are left to it: it refuses those without hashing.
 */
export function passwordHashingHooks () {
  return {
    id: 'password-hashing-hooks',
    hooks: {
      before: [{
        matcher: () => true,
        handler: createAuthMiddleware(async (ctx) => {
          const client = ctx.headers?.get(CLIENT_IP_HEADER)
          const email: unknown = ctx.body?.email
          const session = await ctx.getSignedCookie(ctx.context.authCookies.sessionToken.name, ctx.context.secret)
          const account = typeof email === 'string' ? `email:${email.toLowerCase()}` : session ? `session:${session}` : undefined
          requestContext.set('hashingShare', [client ? `client:${clientBudgetKey(client)}` : undefined, account].filter((key) => key !== undefined))
        })
      }, {
        matcher: (ctx) => ctx.path === '/sign-up/email',
        handler: createAuthMiddleware(async (ctx) => {
          const password: unknown = ctx.body?.password
          if (!withinBounds(password, ctx.context.password.config)) return
          requestContext.set('hashedAhead', { password, hash: await ctx.context.password.hash(password) })
        })
      }, {
        matcher: (ctx) => ctx.path === '/change-password',
        handler: createAuthMiddleware(async (ctx) => {
          const password: unknown = ctx.body?.currentPassword
          const session = await getSessionFromCtx(ctx)
          if (!session || !withinBounds(password, ctx.context.password.config)) return
          const accounts = await ctx.context.internalAdapter.findAccounts(session.user.id)
          const hash = accounts.find((account) => account.providerId === 'credential')?.password
          if (hash) requestContext.set('checkFirst', { password, hash })
        })
      }]
    }
  } satisfies BetterAuthPlugin
}

function withinBounds (password: unknown, config: { minPasswordLength: number, maxPasswordLength: number }): password is string {
  return typeof password === 'string' && password.length >= config.minPasswordLength && password.length <= config.maxPasswordLength
}

/** Niceness of libuv's pool threads: below the event loop's (0), so hashing gets the CPU the event loop leaves. */
export const POOL_THREAD_NICENESS = 10

/**
 * The bound above keeps one hash per core, so on a small machine the event loop shares the cores with hashing
 * threads: a session check arriving during a sign-in storm can wait for the scheduler's next slice (p99 ~8 ms on
 * 2 cores instead of ~1; docs/BENCHMARKS.md). At a lower priority the pool threads yield to the event loop, and
 * hashing still gets every cycle the event loop does not use. The pool also runs file, DNS and WebCrypto jobs: they
 * too wait only when the CPU is saturated. Linux only, and only where Node names its pool threads "libuv-worker"
 * (Node 24 and later; production runs 26). Returns the thread ids lowered.
 */
export async function lowerThreadPoolPriority (): Promise<number[]> {
  if (process.platform !== 'linux') return []
  // libuv starts its threads when the pool gets its first job; each names itself as it starts.
  await new Promise((resolve) => randomFill(Buffer.alloc(1), resolve))
  let workers = poolThreadIds()
  for (let attempt = 0; workers.length > 0 && workers.length < threadPoolSize && attempt < 20; attempt++) {
    await sleep(5)
    workers = poolThreadIds()
  }
  for (const threadId of workers) setPriority(threadId, POOL_THREAD_NICENESS)
  return workers
}

function poolThreadIds (): number[] {
  return readdirSync('/proc/self/task').filter((id) => {
    try {
      return readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim() === 'libuv-worker'
    } catch {
      return false // the thread has ended
    }
  }).map(Number)
}
