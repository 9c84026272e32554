// Reading and pruning the audit trail (src/auth/audit-plugin.ts writes it).
import type { Pool } from 'pg'
import { AUDIT_TABLE } from '../auth/audit-plugin.js'

export interface AuditEventRow {
  id: string
  type: string
  userId: string | null
  createdAt: string
  ipAddress: string | null
  userAgent: string | null
  detail: Record<string, unknown>
}

export interface EventFilter {
  userId?: string
  type?: string
  from?: Date
  to?: Date
}

export interface EventPage {
  events: AuditEventRow[]
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null
}

/**
 * A keyset cursor: the last event's exact createdAt (as PostgreSQL prints it, microseconds included) and id, so
 * pages neither skip nor repeat events however many are written meanwhile.
 */
export function encodeCursor (createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url')
}

/** The cursor's position, or undefined when it is not one of ours. */
export function decodeCursor (cursor: string): { createdAt: string, id: string } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (!Array.isArray(value) || value.length !== 2) return undefined
    const [createdAt, id] = value as unknown[]
    if (typeof createdAt !== 'string' || typeof id !== 'string' || id.length > 100) return undefined
    if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/.test(createdAt)) return undefined
    return { createdAt, id }
  } catch {
    return undefined
  }
}

/** Events matching `filter`, newest first, `limit` per page, after `cursor` when given. */
export async function listEvents (pool: Pool, filter: EventFilter, limit: number, cursor?: { createdAt: string, id: string }): Promise<EventPage> {
  const conditions: string[] = []
  const values: unknown[] = []
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    values.push(value)
    conditions.push(sql(`$${values.length}`))
  }
  if (filter.userId !== undefined) add((p) => `"userId" = ${p}`, filter.userId)
  if (filter.type !== undefined) add((p) => `type = ${p}`, filter.type)
  if (filter.from !== undefined) add((p) => `"createdAt" >= ${p}`, filter.from)
  if (filter.to !== undefined) add((p) => `"createdAt" < ${p}`, filter.to)
  if (cursor !== undefined) {
    values.push(cursor.createdAt, cursor.id)
    conditions.push(`("createdAt", id) < ($${values.length - 1}::timestamptz, $${values.length})`)
  }
  values.push(limit + 1)
  // createdAt travels as text in UTC so the cursor keeps PostgreSQL's microseconds (a JS Date keeps milliseconds).
  const { rows } = await pool.query<AuditEventRow & { position: string }>(
    `SELECT id, type, "userId", "createdAt", "ipAddress", "userAgent", detail,
            to_char("createdAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS position
       FROM ${AUDIT_TABLE}
      ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
      ORDER BY "createdAt" DESC, id DESC
      LIMIT $${values.length}`,
    values
  )
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return {
    events: page.map(({ position: _position, ...event }) => ({
      ...event,
      createdAt: new Date(event.createdAt).toISOString(),
      detail: event.detail ?? {}
    })),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.position, last.id) : null
  }
}

export interface PruneOptions {
  /** Rows per DELETE, so a large backlog never holds many row locks or one long transaction. */
  batchSize?: number
  /** Stop after this many batches (the next run continues). */
  maxBatches?: number
}

/**
 * Deletes events older than `retentionDays`, in batches. SKIP LOCKED lets several machines prune at once: each takes
 * rows no other is deleting, and none waits on another.
 */
export async function pruneEvents (pool: Pool, retentionDays: number, { batchSize = 5_000, maxBatches = 100 }: PruneOptions = {}): Promise<number> {
  let deleted = 0
  for (let batch = 0; batch < maxBatches; batch++) {
    const { rowCount } = await pool.query(
      `DELETE FROM ${AUDIT_TABLE} WHERE id IN (
         SELECT id FROM ${AUDIT_TABLE} WHERE "createdAt" < now() - make_interval(days => $1)
          ORDER BY "createdAt" LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [retentionDays, batchSize]
    )
    deleted += rowCount ?? 0
    if ((rowCount ?? 0) < batchSize) break
    // Let requests use the pool between batches.
    await new Promise((resolve) => setImmediate(resolve))
  }
  return deleted
}
