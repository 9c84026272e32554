import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

// Headers for a JSON API: nothing may frame, sniff or script our answers; HSTS once we are served over https in
// production (on Fly, force_https in fly.toml). Fastify sends no x-powered-by.
const PERSONAL_PREFIXES = ['/api/auth/', '/api/me', '/api/admin/']

export default fp(async function securityHeadersPlugin (app) {
  const httpsOnly = app.config.isProduction && app.config.auth.baseURL.startsWith('https://')
  await app.register(helmet, {
    // Our answers are JSON: no script, style or frame may come from them. The API reference page (/api/docs)
    // relaxes this for its own assets, see src/plugins/openapi.ts.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    // A trusted frontend on another origin reads our answers (CORS); keep helmet from blocking that.
    crossOriginResourcePolicy: { policy: 'same-site' },
    crossOriginOpenerPolicy: true,
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: httpsOnly ? { maxAge: 63_072_000, includeSubDomains: true } : false
  })
  // Answers that can carry a user's data (sessions, sign-in, /api/me, the audit listings), errors and redirects
  // included: no shared cache or back button may hand them to someone else. Better Auth sets it on some of its own.
  app.addHook('onSend', async (request, reply) => {
    if (PERSONAL_PREFIXES.some((prefix) => request.url.startsWith(prefix))) reply.header('cache-control', 'no-store')
  })
}, { name: 'security-headers', dependencies: ['env'], fastify: '5.x' })
