import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { decodeCursor, listEvents, type EventFilter } from '../audit/events.js'
import { ROUTE_RATE_LIMIT } from '../plugins/route-rate-limit.js'
import { adminAuditEventsSchema, securityEventsSchema } from './schemas.js'

// limit has its default (50) in the schema: Fastify's validator fills it in.
interface PageQuery { limit: number, cursor?: string }
interface AdminQuery extends PageQuery { userId?: string, type?: string, from?: string, to?: string }

const badQuery = (reply: FastifyReply, message: string) => reply.code(400).send({ code: 'INVALID_QUERY', message })

/** Roles as Better Auth's admin plugin stores them: a comma-separated list. */
export const isAdmin = (role: unknown) =>
  typeof role === 'string' && role.split(',').map((part) => part.trim()).includes('admin')

export default async function auditRoutes (app: FastifyInstance) {
  // A bad query value is the client's mistake: our JSON error, never a 500.
  const validated = (request: FastifyRequest, reply: FastifyReply): boolean => {
    if (request.validationError === undefined) return true
    void badQuery(reply, request.validationError.message)
    return false
  }
  const cursorOf = (query: PageQuery, reply: FastifyReply) => {
    if (query.cursor === undefined) return { ok: true as const, cursor: undefined }
    const cursor = decodeCursor(query.cursor)
    if (cursor === undefined) void badQuery(reply, 'cursor is not a cursor from a previous page')
    return cursor === undefined ? { ok: false as const } : { ok: true as const, cursor }
  }

  app.get<{ Querystring: PageQuery }>('/api/me/security-events', {
    schema: securityEventsSchema,
    attachValidation: true,
    config: { rateLimit: ROUTE_RATE_LIMIT },
    preHandler: app.requireSession
  }, async (request, reply) => {
    if (!validated(request, reply)) return reply
    const position = cursorOf(request.query, reply)
    if (!position.ok) return reply
    const { user } = request.session!
    return listEvents(app.pg, { userId: user.id }, request.query.limit, position.cursor)
  })

  app.get<{ Querystring: AdminQuery }>('/api/admin/audit-events', {
    schema: adminAuditEventsSchema,
    attachValidation: true,
    config: { rateLimit: ROUTE_RATE_LIMIT },
    preHandler: [app.requireSession, async (request, reply) => {
      if (!isAdmin(request.session!.user.role)) {
        await reply.code(403).send({ code: 'FORBIDDEN', message: 'Only admins can read the audit trail.' })
      }
    }]
  }, async (request, reply) => {
    if (!validated(request, reply)) return reply
    const position = cursorOf(request.query, reply)
    if (!position.ok) return reply
    const { userId, type, from, to, limit } = request.query
    const filter: EventFilter = {
      userId,
      type,
      from: from === undefined ? undefined : new Date(from),
      to: to === undefined ? undefined : new Date(to)
    }
    if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) {
      return badQuery(reply, 'from must not be after to')
    }
    return listEvents(app.pg, filter, limit, position.cursor)
  })
}
