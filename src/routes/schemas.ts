// Response shapes of our own routes, for validation-free serialization and the OpenAPI document.
import { AUDIT_EVENT_TYPES } from '../auth/audit-plugin.js'

export const errorSchema = {
  type: 'object',
  description: 'Every error: a stable code and a message for people.',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
  required: ['code', 'message']
} as const

/** Better Auth's user and session records; plugins add fields, so every field is passed through. */
const record = (description: string) => ({ type: 'object', description, additionalProperties: true }) as const

export const meSchema = {
  tags: ['pond-backend'],
  summary: 'The signed-in user and session',
  description: 'Requires the session cookie. The session token is left out: it is the HttpOnly cookie\'s value.',
  response: {
    200: {
      type: 'object',
      properties: { user: record('Better Auth user'), session: record('Better Auth session, without its token') },
      required: ['user', 'session']
    },
    401: errorSchema
  }
} as const

export const livenessSchema = {
  tags: ['pond-backend'],
  summary: 'Liveness (Fly\'s health check)',
  description: 'Answers while the process runs; does not touch the database.',
  response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, required: ['status'] } }
} as const

export const readinessSchema = {
  tags: ['pond-backend'],
  summary: 'Readiness',
  description: 'Ready when the database answers within 2 s and no migration is pending.',
  response: {
    200: { type: 'object', properties: { status: { type: 'string', const: 'ready' } }, required: ['status'] },
    503: {
      type: 'object',
      properties: {
        status: { type: 'string', const: 'unavailable' },
        reason: { type: 'string' },
        pending: { type: 'array', items: { type: 'string' } }
      },
      required: ['status', 'reason']
    }
  }
} as const

const auditEventSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { type: 'string', enum: [...AUDIT_EVENT_TYPES] },
    userId: { type: ['string', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
    ipAddress: { type: ['string', 'null'], description: 'The client\'s address, as TRUST_PROXY determines it' },
    userAgent: { type: ['string', 'null'] },
    detail: { type: 'object', additionalProperties: true, description: 'Small and secret-free: method, reason code, actorId, …' }
  },
  required: ['id', 'type', 'userId', 'createdAt', 'ipAddress', 'userAgent', 'detail']
} as const

const eventPageSchema = {
  type: 'object',
  properties: {
    events: { type: 'array', items: auditEventSchema, description: 'Newest first' },
    nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next (older) page; null on the last' }
  },
  required: ['events', 'nextCursor']
} as const

const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
  cursor: { type: 'string', minLength: 1, maxLength: 300 }
} as const

export const securityEventsSchema = {
  tags: ['pond-backend'],
  summary: 'The signed-in user\'s security events',
  description: 'Requires the session cookie. Sign-ins (and failed attempts), sign-outs, revoked sessions, password, ' +
    'email and two-factor changes of this account, newest first.',
  querystring: { type: 'object', properties: pageQuery, additionalProperties: false },
  response: { 200: eventPageSchema, 400: errorSchema, 401: errorSchema }
} as const

export const adminAuditEventsSchema = {
  tags: ['pond-backend'],
  summary: 'The audit trail (admins)',
  description: 'Requires the session cookie of a user whose role includes admin. Every security event, newest first, ' +
    'filtered by user, type and time (from inclusive, to exclusive).',
  querystring: {
    type: 'object',
    properties: {
      ...pageQuery,
      userId: { type: 'string', minLength: 1, maxLength: 255 },
      type: { type: 'string', enum: [...AUDIT_EVENT_TYPES] },
      from: { type: 'string', format: 'date-time' },
      to: { type: 'string', format: 'date-time' }
    },
    additionalProperties: false
  },
  response: { 200: eventPageSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema }
} as const
