// Paths under /api/auth that Better Auth does not serve. Its rate limiter keys its counters on the raw path and runs
// before it looks the path up, so an invented path used to cost a row in "rateLimit" and a long random one a 500
// (PostgreSQL's index refuses a key of ~2.7 KB that does not compress). Only Better Auth's own endpoints reach it.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'
import { query } from './helpers/database.js'
import { SOCIAL_ENV } from './helpers/oauth-providers.js'

const { app, url, databaseUrl, logs } = await buildTestApp(t, { listen: true, env: { RATE_LIMIT: 'on', ...SOCIAL_ENV } })
const rateLimitRows = async () => Number((await query(databaseUrl, 'SELECT count(*) FROM "rateLimit"')).rows[0].count)
const errorLines = () => logs.filter((line) => Number(line.level) >= 50)
// Random bytes as URL-safe text: what compression cannot shrink.
const incompressible = (length: number) => randomBytes(length).toString('base64url').slice(0, length)

async function get (path: string, init: RequestInit = {}) {
  const response = await fetch(url + path, { redirect: 'manual', ...init, headers: { origin: TRUSTED_ORIGIN, ...init.headers } })
  const text = await response.text()
  return { status: response.status, type: response.headers.get('content-type'), text }
}

t.test('an invented path is a JSON 404 that leaves no state, however long', async (t) => {
  const before = await rateLimitRows()
  const paths = [
    `/api/auth/${incompressible(3000)}`,
    `/api/auth/${'a'.repeat(8000)}`,
    '/api/auth/no-such-endpoint',
    '/api/auth/sign-in/email/extra',
    '/api/auth/admin/' + incompressible(40),
    '/api/auth/two-factor/' + incompressible(3000)
  ]
  for (const path of paths) {
    const answer = await get(path)
    t.equal(answer.status, 404, `${path.slice(0, 50)}…: 404`)
    t.match(answer.type, /^application\/json/)
    t.match(JSON.parse(answer.text), { code: 'NOT_FOUND' })
  }
  t.equal(await rateLimitRows(), before, 'no rate-limit row for an invented path')
  t.same(errorLines(), [], 'nothing logged at error level')
})

t.test('a path parameter is bounded, and an invented one creates no state', async (t) => {
  const before = await rateLimitRows()
  const overlong = await get(`/api/auth/callback/${incompressible(3000)}`)
  t.equal(overlong.status, 414, 'an overlong provider: 414 from the router')
  t.match(JSON.parse(overlong.text), { code: 'FST_ERR_MAX_PARAM_LENGTH' })
  t.equal((await get('/api/auth/callback/gitlab?code=x&state=y')).status, 404, 'a provider that is not configured: 404')
  t.equal((await get(`/api/auth/reset-password/${incompressible(3000)}`)).status, 414, 'an overlong reset token: 414')
  for (let i = 0; i < 5; i++) {
    const answer = await get(`/api/auth/reset-password/${incompressible(24)}?callbackURL=${encodeURIComponent(TRUSTED_ORIGIN + '/reset-password')}`)
    t.equal(answer.status, 302, 'an unknown reset token still lands on the frontend, which says the link is bad')
  }
  t.equal(await rateLimitRows(), before, 'no rate-limit row per invented token or provider')
  t.same(errorLines(), [], 'nothing logged at error level')
})

t.test('Better Auth\'s own endpoints are still served and limited', async (t) => {
  t.equal((await get('/api/auth/ok')).status, 200)
  t.equal((await get('/api/auth/callback/github?code=x&state=y')).status, 302, 'a configured provider\'s callback reaches Better Auth')
  const signIn = await get('/api/auth/sign-in/email', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'nobody@example.com', password: 'wrong password' }) })
  t.equal(signIn.status, 401)
  t.ok(await rateLimitRows() > 0, 'their requests are counted')
  t.equal((await get('/api/auth/ok', { method: 'DELETE' })).status, 404, 'a method an endpoint does not take: 404')
})

t.test('the routes are Better Auth\'s endpoints, no more', async (t) => {
  for (const [method, path] of [['POST', '/api/auth/sign-in/email'], ['GET', '/api/auth/callback/:id'], ['POST', '/api/auth/callback/:id'],
    ['GET', '/api/auth/reset-password/:token'], ['GET', '/api/auth/get-session'], ['POST', '/api/auth/get-session']] as const) {
    t.ok(app.hasRoute({ method, url: path }), `${method} ${path}`)
  }
  t.notOk(app.hasRoute({ method: 'GET', url: '/api/auth/*' }), 'no catch-all')
})
