import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

// Headers for a JSON API: nothing may frame, sniff or script our answers; HSTS once we are served over https in
// production (on Fly, force_https in fly.toml). Fastify sends no x-powered-by.
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
}, { name: 'security-headers', dependencies: ['env'], fastify: '5.x' })
