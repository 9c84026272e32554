import t from 'tap'
import { buildTestApp, TRUSTED_ORIGIN, UNTRUSTED_ORIGIN } from './helpers/app.js'

const SECOND_ORIGIN = 'https://pond.example.com'
const { url } = await buildTestApp(t, { listen: true, env: { TRUSTED_ORIGINS: `${TRUSTED_ORIGIN},${SECOND_ORIGIN}` } })

t.test('a trusted origin may read answers, with credentials', async (t) => {
  for (const origin of [TRUSTED_ORIGIN, SECOND_ORIGIN]) {
    const response = await fetch(new URL('/api/auth/get-session', url), { headers: { origin } })
    t.equal(response.status, 200)
    t.equal(response.headers.get('access-control-allow-origin'), origin)
    t.equal(response.headers.get('access-control-allow-credentials'), 'true')
    t.match(response.headers.get('vary'), /Origin/)
  }
})

t.test('another origin gets no Access-Control-Allow-Origin', async (t) => {
  for (const origin of [UNTRUSTED_ORIGIN, 'null', 'http://localhost:5173.evil.example', 'https://pond.example.com:444']) {
    const response = await fetch(new URL('/api/me', url), { headers: { origin } })
    // (@fastify/cors still sends Allow-Credentials; without Allow-Origin the browser lets the page read nothing.)
    t.equal(response.headers.get('access-control-allow-origin'), null, origin)
  }
})

t.test('preflight: allowed for a trusted origin, not for another', async (t) => {
  const preflight = (origin: string) => fetch(new URL('/api/auth/sign-in/email', url), {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
  })
  const allowed = await preflight(TRUSTED_ORIGIN)
  t.equal(allowed.status, 204)
  t.equal(allowed.headers.get('access-control-allow-origin'), TRUSTED_ORIGIN)
  t.equal(allowed.headers.get('access-control-allow-credentials'), 'true')
  t.match(allowed.headers.get('access-control-allow-methods'), /POST/)
  t.match(allowed.headers.get('access-control-allow-headers'), /content-type/)

  const refused = await preflight(UNTRUSTED_ORIGIN)
  t.equal(refused.headers.get('access-control-allow-origin'), null)
})
