// The fast session check (src/auth/session-reader.ts) must give Better Auth's own answers: the same session and user,
// refusal of revoked, expired and banned sessions at once, sliding expiry, and Better Auth's rate-limit budget.
import t from 'tap'
import { SESSION_EXPIRES_IN_SECONDS } from '../src/auth/create-auth.js'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'
import { query } from './helpers/database.js'

const { app, url, databaseUrl } = await buildTestApp(t, { listen: true })
const UPDATE_AGE_SECONDS = (await app.auth.$context).sessionConfig.updateAge
let users = 0

/** A new user, signed up over HTTP: its session cookie (name=value) and ids. */
async function signUp (rememberMe = true) {
  const email = `user${++users}@example.com`
  const password = 'correct horse battery'
  await post('/api/auth/sign-up/email', { email, password, name: `User ${users}` })
  const response = await post('/api/auth/sign-in/email', { email, password, rememberMe })
  t.equal(response.status, 200)
  const cookie = response.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
  const { user, token } = await response.json() as { user: { id: string }, token: string }
  return { cookie, userId: user.id, token }
}

function post (path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url + path, { method: 'POST', headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

/** get-session through our route (the fast path when Better Auth would only read). */
async function ours (cookie: string, search = '') {
  const response = await fetch(`${url}/api/auth/get-session${search}`, { headers: { cookie } })
  return { status: response.status, body: await response.text(), cookies: response.headers.getSetCookie(), headers: response.headers }
}

/** get-session answered by Better Auth itself, bypassing our route. */
async function betterAuths (cookie: string, search = '') {
  const response = await app.auth.handler(new Request(`${url}/api/auth/get-session${search}`, { headers: { cookie } }))
  return { status: response.status, body: await response.text(), cookies: response.headers.getSetCookie() }
}

async function me (cookie: string) {
  const response = await fetch(`${url}/api/me`, { headers: { cookie } })
  return { status: response.status, cookies: response.headers.getSetCookie() }
}

async function expiresAt (token: string): Promise<Date | undefined> {
  const { rows } = await query(databaseUrl, 'SELECT "expiresAt" FROM session WHERE token = $1', [token])
  return rows[0]?.expiresAt as Date | undefined
}

/** Moves a session's expiry so that it ends in `seconds`. */
async function expireIn (token: string, seconds: number) {
  await query(databaseUrl, 'UPDATE session SET "expiresAt" = now() + make_interval(secs => $2) WHERE token = $1', [token, seconds])
}

t.test('a live session: the same session and user as Better Auth, and nothing written', async (t) => {
  const { cookie, userId, token } = await signUp()
  // Fields of every plugin's columns, with values other than the defaults.
  await query(databaseUrl, 'UPDATE "user" SET role = \'admin\', "twoFactorEnabled" = true, image = \'https://example.com/a.png\' WHERE id = $1', [userId])
  const before = await expiresAt(token)
  t.type(before, Date)
  const fast = await ours(cookie)
  const reference = await betterAuths(cookie)
  t.equal(fast.status, 200)
  t.same(JSON.parse(fast.body), JSON.parse(reference.body), 'same JSON as Better Auth')
  t.equal(JSON.parse(fast.body).user.role, 'admin')
  t.same(fast.cookies, [], 'no cookie set')
  t.same(reference.cookies, [])
  t.equal(fast.headers.get('cache-control'), 'no-store')
  t.same(await expiresAt(token), before, 'no refresh written')
  t.equal((await me(cookie)).status, 200)
})

t.test('no cookie, or a cookie whose signature is wrong: null, as Better Auth answers', async (t) => {
  const { cookie } = await signUp()
  const [name, value] = cookie.split('; ')[0]!.split('=') as [string, string]
  const decoded = decodeURIComponent(value)
  // Change the signature's first character: its last one before '=' carries two padding bits, and a change there
  // alone (A<->B, ...) decodes to the same bytes, which Better Auth rightly accepts (1 run in 16 failed that way).
  const dot = decoded.lastIndexOf('.')
  const tampered = `${name}=${encodeURIComponent(decoded.slice(0, dot + 1) + (decoded[dot + 1] === 'A' ? 'B' : 'A') + decoded.slice(dot + 2))}`
  const unsigned = `${name}=${decoded.slice(0, decoded.lastIndexOf('.'))}`
  for (const [label, header] of [['none', ''], ['tampered', tampered], ['unsigned', unsigned], ['garbage', `${name}=%E0%A4%A`]] as const) {
    const fast = await ours(header)
    t.equal(fast.status, 200, label)
    t.equal(fast.body, 'null', `${label}: null`)
    t.equal((await betterAuths(header)).body, 'null', `${label}: Better Auth agrees`)
    t.equal((await me(header)).status, 401, `${label}: /api/me refuses`)
  }
})

t.test('a revoked or expired session is refused at once, and its cookie cleared', async (t) => {
  const signedOut = await signUp()
  t.equal((await me(signedOut.cookie)).status, 200)
  t.equal((await post('/api/auth/sign-out', {}, { cookie: signedOut.cookie })).status, 200)
  const afterSignOut = await ours(signedOut.cookie)
  t.equal(afterSignOut.body, 'null')
  t.match(afterSignOut.cookies.join('\n'), /better-auth\.session_token=;.*Max-Age=0/, 'Better Auth clears the cookie')
  t.equal((await me(signedOut.cookie)).status, 401)

  const expired = await signUp()
  await expireIn(expired.token, -60)
  t.equal((await me(expired.cookie)).status, 401, '/api/me refuses an expired session')
  t.equal((await ours(expired.cookie)).body, 'null')
  t.equal(await expiresAt(expired.token), undefined, 'Better Auth deleted the expired session')
})

t.test('sliding expiry: a session due for refresh is extended and its cookie renewed', async (t) => {
  // Due: last refreshed more than updateAge ago.
  const dueIn = SESSION_EXPIRES_IN_SECONDS - UPDATE_AGE_SECONDS - 60
  const viaGetSession = await signUp()
  await expireIn(viaGetSession.token, dueIn)
  const refreshed = await ours(viaGetSession.cookie)
  t.equal(refreshed.status, 200)
  t.match(refreshed.cookies.join('\n'), new RegExp(`better-auth\\.session_token=.*Max-Age=${SESSION_EXPIRES_IN_SECONDS}`))
  const extended = (await expiresAt(viaGetSession.token))!.getTime()
  t.ok(extended > Date.now() + (SESSION_EXPIRES_IN_SECONDS - 60) * 1000, 'expiry moved to a full lifetime from now')
  t.same(new Date(JSON.parse(refreshed.body).session.expiresAt).getTime(), extended)

  t.same(refreshed.body === 'null', false)
  const viaMe = await signUp()
  await expireIn(viaMe.token, dueIn)
  const answer = await me(viaMe.cookie)
  t.equal(answer.status, 200)
  t.match(answer.cookies.join('\n'), /better-auth\.session_token=/, '/api/me passes the renewed cookie on')
  t.ok((await expiresAt(viaMe.token))!.getTime() > Date.now() + (SESSION_EXPIRES_IN_SECONDS - 60) * 1000)

  const untouched = await signUp()
  await expireIn(untouched.token, dueIn)
  const before = await expiresAt(untouched.token)
  t.type(before, Date)
  const fast = await ours(untouched.cookie, '?disableRefresh=true')
  t.same(JSON.parse(fast.body), JSON.parse((await betterAuths(untouched.cookie, '?disableRefresh=true')).body))
  t.same(fast.cookies, [])
  t.same(await expiresAt(untouched.token), before, 'disableRefresh: nothing written')

  const notRemembered = await signUp(false)
  t.match(notRemembered.cookie, /dont_remember=/)
  await expireIn(notRemembered.token, dueIn)
  const before2 = await expiresAt(notRemembered.token)
  t.type(before2, Date)
  const served = await ours(notRemembered.cookie)
  t.same(JSON.parse(served.body), JSON.parse((await betterAuths(notRemembered.cookie)).body))
  t.same(await expiresAt(notRemembered.token), before2, '"remember me" off: Better Auth does not refresh, nor do we')
})

t.test('a banned user is refused, whether the ban came through the admin API or straight from the database', async (t) => {
  const admin = await signUp()
  await query(databaseUrl, 'UPDATE "user" SET role = \'admin\' WHERE id = $1', [admin.userId])
  const viaApi = await signUp()
  const ban = await post('/api/auth/admin/ban-user', { userId: viaApi.userId }, { cookie: admin.cookie })
  t.equal(ban.status, 200)
  t.equal((await me(viaApi.cookie)).status, 401)
  t.equal((await ours(viaApi.cookie)).body, 'null')

  const viaDatabase = await signUp()
  await query(databaseUrl, 'UPDATE "user" SET banned = true WHERE id = $1', [viaDatabase.userId])
  t.equal((await me(viaDatabase.cookie)).status, 401)
  t.equal((await ours(viaDatabase.cookie)).body, 'null')
  await query(databaseUrl, 'UPDATE "user" SET "banExpires" = now() - interval \'1 minute\' WHERE id = $1', [viaDatabase.userId])
  t.equal((await me(viaDatabase.cookie)).status, 200, 'a ban that has expired no longer applies')
})

t.test('get-session and /api/me keep a rate limit: Better Auth\'s default budget per client address', async (t) => {
  const { app: limited } = await buildTestApp(t, { env: { RATE_LIMIT: 'on' } })
  for (const path of ['/api/auth/get-session', '/api/me']) {
    const statuses = new Map<number, number>()
    for (let i = 0; i < 100; i++) {
      const { statusCode } = await limited.inject({ url: path, remoteAddress: '203.0.113.7' })
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1)
    }
    t.notOk(statuses.has(429), `${path}: 100 requests in a minute are allowed`)
    t.notOk('x-ratelimit-remaining' in (await limited.inject({ url: path, remoteAddress: '203.0.113.9' })).headers, 'no rate-limit headers on allowed answers')
    const refused = await limited.inject({ url: path, remoteAddress: '203.0.113.7' })
    t.equal(refused.statusCode, 429, `${path}: the 101st is refused`)
    t.equal(refused.json().code, 'TOO_MANY_REQUESTS')
    t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After')
    t.not((await limited.inject({ url: path, remoteAddress: '203.0.113.8' })).statusCode, 429, 'another address is not affected')
  }
})
