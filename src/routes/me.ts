import type { FastifyInstance } from 'fastify'
import { ROUTE_RATE_LIMIT } from '../plugins/route-rate-limit.js'
import { meSchema } from './schemas.js'

export default async function meRoutes (app: FastifyInstance) {
  app.get('/api/me', { schema: meSchema, config: { rateLimit: ROUTE_RATE_LIMIT }, preHandler: app.requireSession }, async (request) => {
    const { user, session } = request.session!
    // The token is the HttpOnly cookie's value: page script must not get it from a JSON body.
    const { token: _token, ...safeSession } = session
    return { user, session: safeSession }
  })
}
