import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

// Browsers may read our answers, with cookies, only from the trusted origins: the same list Better Auth checks.
export default fp(async function corsPlugin (app) {
  await app.register(fastifyCors, {
    origin: app.config.auth.trustedOrigins,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    maxAge: 600,
    // The frontend may show it in an error message: the request id finds the request in our logs.
    exposedHeaders: ['x-request-id'],
    // An OPTIONS request that is not a real preflight goes on to our routes (a JSON 404) instead of a text 400.
    strictPreflight: false
  })
}, { name: 'cors', dependencies: ['env'], fastify: '5.x' })
