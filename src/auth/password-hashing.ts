import { randomFill } from 'node:crypto'
import { requestContext } from '@fastify/request-context'
import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism, setPriority } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BetterAuthPlugin } from 'better-auth'
import { APIError, createAuthMiddleware } from 'better-auth/api'
import { hashPassword, verifyPassword } from 'better-auth/crypto'
import pLimit from 'p-limit'

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
  queueLimit: 16 * concurrency
}

export const HASHING_BUSY = {
  code: 'SERVER_BUSY',
  message: 'Too many sign-ins are being processed right now. Try again in a moment.'
} as const

/** Seconds a client should wait after HASHING_BUSY: the queue drains in about a second. */
export const HASHING_RETRY_AFTER_SECONDS = 1

export function boundedPasswordHashing ({ concurrency, queueLimit } = PASSWORD_HASHING) {
  const limit = pLimit(concurrency)
  const run = async <T>(job: () => Promise<T>): Promise<T> => {
    if (limit.activeCount >= concurrency && limit.pendingCount >= queueLimit) {
      throw new APIError('SERVICE_UNAVAILABLE', { ...HASHING_BUSY })
    }
    return await limit(job)
  }
  return {
    hash: (password: string) => takeHashedAhead(password) ?? run(() => hashPassword(password)),
    verify: ({ hash, password }: { hash: string, password: string }) => run(() => verifyPassword({ hash, password })),
    /** Hashes running and waiting (for tests and metrics). */
    get load () { return { active: limit.activeCount, pending: limit.pendingCount } }
  }
}

declare module '@fastify/request-context' {
  interface RequestContextData {
    /** A sign-up's password and its hash, made before the sign-up's transaction (signUpHashedFirst). */
    hashedAhead?: { password: string, hash: string }
  }
}

function takeHashedAhead (password: string): Promise<string> | undefined {
  const ahead = requestContext.get('hashedAhead')
  if (ahead?.password !== password) return undefined
  requestContext.set('hashedAhead', undefined)
  return Promise.resolve(ahead.hash)
}

/**
 * Better Auth hashes a sign-up's password inside the sign-up's database transaction, so the transaction's pooled
 * connection is held while the hash waits for its slot: a burst of sign-ups larger than the pool would leave the
 * rest waiting for connections, and failing with the pool's timeout (503) on a busy machine. This plugin's hook
 * hashes first, while no connection is held; the sign-up's own call then takes that hash (same request, same
 * password). A password outside Better Auth's length bounds is left to it: it refuses those without hashing.
 */
export function signUpHashedFirst () {
  return {
    id: 'sign-up-hashed-first',
    hooks: {
      before: [{
        matcher: (ctx) => ctx.path === '/sign-up/email',
        handler: createAuthMiddleware(async (ctx) => {
          const password: unknown = ctx.body?.password
          const { hash, config } = ctx.context.password
          if (typeof password !== 'string' || password.length < config.minPasswordLength || password.length > config.maxPasswordLength) return
          requestContext.set('hashedAhead', { password, hash: await hash(password) })
        })
      }]
    }
  } satisfies BetterAuthPlugin
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
