import type { SecondaryStorage } from 'better-auth'

/**
 * Better Auth's secondary storage (Redis) for everything but sessions: rate limits and the like go through, sessions
 * stay in PostgreSQL only (storeSessionInDatabase), where Better Auth then reads them as it does without Redis.
 *
 * Better Auth 1.7.25 trusts a session's Redis copy without looking at the database, and re-writes that copy when it
 * refreshes the session: a refresh that read the copy before a revocation (revoke-session, sign-out,
 * revoke-other-sessions) and writes it back after puts the revoked session back, valid until its Redis TTL, which
 * every later refresh extends (upstream issue #11073; test/redis-sessions.test.ts reproduces it). Revoking all of a
 * user's sessions and bans are covered by a per-user marker, single sessions are not. The copy saved little here:
 * get-session and /api/me already read PostgreSQL (src/auth/session-reader.ts).
 *
 * Better Auth's session keys are a session's token (its copy), `active-sessions-<userId>` (the list of a user's
 * tokens) and `revoked-sessions-before-<userId>` (that marker). They are neither written nor read; deleting still
 * reaches Redis, so copies an earlier release left there go when their session ends (and are never read meanwhile).
 */
export function withoutSessions (storage: SecondaryStorage): SecondaryStorage {
  return {
    get: async (key) => {
      if (isSessionKey(key)) return null
      const value = await storage.get(key)
      // A copy is recognised by its content too, should a later Better Auth shape its tokens differently.
      return isSessionCopy(key, value) ? null : value
    },
    getAndDelete: (key) => storage.getAndDelete(key),
    increment: (key, ttl) => storage.increment(key, ttl),
    set: async (key, value, ttl) => {
      if (isSessionKey(key) || isSessionCopy(key, value)) return
      return storage.set(key, value, ttl)
    },
    delete: (key) => storage.delete(key)
  }
}

// generateId(32) in Better Auth's internal adapter: 32 letters and digits.
const TOKEN = /^[A-Za-z0-9]{32}$/

function isSessionKey (key: string): boolean {
  return TOKEN.test(key) || key.startsWith('active-sessions-') || key.startsWith('revoked-sessions-before-')
}

function isSessionCopy (key: string, value: unknown): boolean {
  if (typeof value !== 'string' || !value.startsWith('{"session"')) return false
  try {
    return (JSON.parse(value) as { session?: { token?: unknown } }).session?.token === key
  } catch {
    return false
  }
}
