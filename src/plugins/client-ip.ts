import fp from 'fastify-plugin'
import { createClientIp } from '../client-ip.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The client's address under TRUST_PROXY: what Better Auth and the logs see. */
    readonly clientIp: string
  }
}

export default fp(async function clientIpPlugin (app) {
  const clientIp = createClientIp(app.config.trustProxy)
  app.decorateRequest('clientIp', { getter () { return clientIp(this) } })
}, { name: 'client-ip', dependencies: ['env'], fastify: '5.x' })
