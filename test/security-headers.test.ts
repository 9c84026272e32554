import t from 'tap'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'

const production = {
  NODE_ENV: 'production',
  BETTER_AUTH_URL: 'https://pond-backend.fly.dev',
  SMTP_URL: 'smtp://127.0.0.1:1',
  MAIL_FROM: 'no-reply@pond.example'
}

// Our JSON, an error, a 404 and an answer that Better Auth produced.
const requests = [
  { method: 'GET' as const, url: '/health' },
  { method: 'GET' as const, url: '/api/me' },
  { method: 'GET' as const, url: '/nowhere' },
  { method: 'GET' as const, url: '/api/auth/get-session' },
  { method: 'POST' as const, url: '/api/auth/sign-in/email', payload: { email: 'a@example.com', password: 'wrong password' } }
]

t.test('every answer carries the headers of a JSON API', async (t) => {
  const { app } = await buildTestApp(t)
  for (const request of requests) {
    const answer = await app.inject({ ...request, headers: { origin: TRUSTED_ORIGIN } })
    const name = `${request.method} ${request.url} (${answer.statusCode})`
    t.equal(answer.headers['x-content-type-options'], 'nosniff', `${name}: no sniffing`)
    t.equal(answer.headers['x-frame-options'], 'DENY', `${name}: no framing`)
    t.match(answer.headers['content-security-policy'], /default-src 'none'.*frame-ancestors 'none'/, `${name}: CSP`)
    t.equal(answer.headers['referrer-policy'], 'no-referrer', name)
    t.equal(answer.headers['x-powered-by'], undefined, `${name}: no x-powered-by`)
    t.equal(answer.headers['strict-transport-security'], undefined, `${name}: no HSTS on http in development`)
    t.equal(answer.headers['access-control-allow-origin'], TRUSTED_ORIGIN, `${name}: CORS still answers the trusted origin`)
  }
})

t.test('production over https adds HSTS', async (t) => {
  const { app } = await buildTestApp(t, { env: production })
  for (const request of requests) {
    const answer = await app.inject(request)
    t.equal(answer.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains', `${request.method} ${request.url}`)
  }
})

t.test('the API reference page gets its own policy, still not frameable', async (t) => {
  const { app } = await buildTestApp(t)
  const page = await app.inject('/api/docs')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-security-policy'], /script-src 'self'/)
  t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.notMatch(page.headers['content-security-policy'], /https?:|validator\.swagger\.io/, 'no outside host is allowed')
  t.equal(page.headers['x-frame-options'], 'DENY')
})

// Security review finding 5: /api/me and the audit listings sent no Cache-Control, so a shared cache or the
// browser's back button could hand a user's data to the next person. Every answer that can carry a user's data says
// no-store (Better Auth's own answers included), signed in or not.
t.test('answers that carry a user\'s data are never stored by a cache', async (t) => {
  const { app } = await buildTestApp(t)
  const signUp = await app.inject({
    method: 'POST', url: '/api/auth/sign-up/email', headers: { origin: TRUSTED_ORIGIN },
    payload: { email: 'cached@example.com', password: 'correct horse battery', name: 'Cached' }
  })
  const cookie = signUp.headers['set-cookie']!.toString().split(';')[0]!
  t.equal(signUp.headers['cache-control'], 'no-store', 'POST /api/auth/sign-up/email')
  await app.pg.query('UPDATE "user" SET role = \'admin\' WHERE email = $1', ['cached@example.com'])
  for (const url of ['/api/me', '/api/me/security-events', '/api/admin/audit-events', '/api/auth/get-session', '/api/auth/list-sessions', '/api/auth/list-accounts']) {
    for (const headers of [{ origin: TRUSTED_ORIGIN, cookie }, { origin: TRUSTED_ORIGIN }]) {
      const answer = await app.inject({ method: 'GET', url, headers })
      t.equal(answer.headers['cache-control'], 'no-store', `GET ${url} (${answer.statusCode}${headers.cookie ? ', signed in' : ''})`)
    }
  }
})
