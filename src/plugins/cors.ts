import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

// Browsers may read our answers, with cookies, only from the trusted origins: the same list Better Auth checks.
export default fp(async function corsPlugin (app) {
  await app.register(fastifyCors, {
    origin: app.config.auth.trustedOrigins,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['env'], fastify: '5.x' })
