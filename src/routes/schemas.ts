// Response shapes of our own routes, for validation-free serialization and the OpenAPI document.

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
