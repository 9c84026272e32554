import type { Pool } from 'pg'

/** True when the database answers `SELECT 1` within `timeoutMs`. */
export async function databaseAnswers (pool: Pool, timeoutMs = 1_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
  const answer = pool.query('SELECT 1').then(() => true, () => false)
  try {
    return await Promise.race([answer, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Seconds a client should wait before retrying while the database is away (PostgreSQL restarts take a few). */
export const DATABASE_RETRY_AFTER_SECONDS = 5

export const DATABASE_UNAVAILABLE = {
  code: 'DATABASE_UNAVAILABLE',
  message: 'The service cannot reach its database right now. Try again in a few seconds.'
} as const

export const INTERNAL_ERROR = { code: 'INTERNAL_ERROR', message: 'Something went wrong on our side.' } as const

// Connection-level failures: refused, reset, timed out, or the server shutting down / starting up (SQLSTATE 57P0x,
// class 08). Not query errors such as a constraint violation.
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03'])
const CONNECTION_MESSAGE = /connection terminated|not queryable|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery mode)/i

/** True when `error` (or what it wraps) says the database connection failed. */
export function isConnectionError (error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true
    if (CONNECTION_MESSAGE.test(current.message)) return true
  }
  return false
}

/**
 * What to answer for a server-side failure: 503 with Retry-After when the database is away (the usual cause, and
 * temporary), otherwise 500. Decided from the error, or by asking the database after the fact, so requests that
 * succeed pay nothing.
 */
export async function serverFault (pool: Pool, error?: unknown) {
  return !isConnectionError(error) && await databaseAnswers(pool)
    ? { statusCode: 500, body: INTERNAL_ERROR, retryAfter: undefined }
    : { statusCode: 503, body: DATABASE_UNAVAILABLE, retryAfter: DATABASE_RETRY_AFTER_SECONDS }
}
