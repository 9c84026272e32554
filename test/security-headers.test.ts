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
