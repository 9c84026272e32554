// The baseline: Better Auth mounted as its Fastify integration guide shows, with our own Better Auth instance
// (createAuth from the service's configuration, same production environment, same pool size), so that the only
// difference from the service is how Better Auth is mounted.
import Fastify from 'fastify'
import { createAuth } from '../../src/auth/create-auth.js'
import { loadConfig } from '../../src/config/index.js'
import { createPool } from '../../src/db/pool.js'

const config = loadConfig()
const fastify = Fastify({ logger: true })
const pool = createPool(config.databaseUrl!, { log: fastify.log })
const auth = createAuth(config, pool)

// From here to the end of the route: the guide's handler.
fastify.route({
  method: ['GET', 'POST'],
  url: '/api/auth/*',
  async handler (request, reply) {
    try {
      const url = new URL(request.url, `http://${request.headers.host}`)
      const headers = new Headers()
      Object.entries(request.headers).forEach(([key, value]) => {
        if (value) headers.append(key, value.toString())
      })
      const req = new Request(url.toString(), {
        method: request.method,
        headers,
        body: request.body ? JSON.stringify(request.body) : undefined
      })
      const response = await auth.handler(req)
      reply.status(response.status)
      response.headers.forEach((value, key) => reply.header(key, value))
      reply.send(response.body ? await response.text() : null)
    } catch (error) {
      fastify.log.error(error, 'Authentication Error')
      reply.status(500).send({ error: 'Internal authentication error', code: 'AUTH_FAILURE' })
    }
  }
})

await fastify.listen({ port: config.port, host: '127.0.0.1' })
process.stdin.on('close', () => process.exit(0)).resume()
process.on('SIGTERM', () => { fastify.close().then(() => pool.end()).finally(() => process.exit(0)) })
