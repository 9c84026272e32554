import t from 'tap'
import { buildTestApp, UNTRUSTED_ORIGIN } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'

const { url, databaseUrl } = await buildTestApp(t, { listen: true })
const credentials = { email: 'ada@example.com', password: 'correct horse battery', name: 'Ada' }

t.test('sign-up, get-session, /api/me, sign-out and sign-in through real HTTP', async (t) => {
  const browser = browserClient(url)

  const anonymous = await browser.get('/api/me')
  t.equal(anonymous.status, 401)
  t.same(anonymous.json(), { code: 'UNAUTHORIZED', message: 'Sign in to use this route.' })

  const signUp = await browser.post('/api/auth/sign-up/email', credentials)
  t.equal(signUp.status, 200, signUp.text)
  t.equal(signUp.json().user.email, credentials.email)
  const [cookie] = await browser.cookies()
  t.equal(cookie?.key, 'better-auth.session_token')
  t.equal(cookie?.httpOnly, true)

  const session = await browser.get('/api/auth/get-session')
  t.equal(session.json().user.email, credentials.email)

  const me = await browser.get('/api/me')
  t.equal(me.status, 200)
  t.equal(me.json().user.email, credentials.email)
  t.equal(me.json().session.userId, me.json().user.id)
  t.notOk('token' in me.json().session, 'the session token stays in its HttpOnly cookie')

  const signOut = await browser.post('/api/auth/sign-out')
  t.equal(signOut.status, 200, signOut.text)
  t.equal((await browser.get('/api/me')).status, 401)
  t.equal((await browser.get('/api/auth/get-session')).text, 'null')

  const signIn = await browser.post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
  t.equal(signIn.status, 200, signIn.text)
  t.equal((await browser.get('/api/me')).json().user.email, credentials.email)

  const wrong = await browserClient(url).post('/api/auth/sign-in/email', { email: credentials.email, password: 'wrong password!' })
  t.equal(wrong.status, 401)
  t.equal(wrong.json().code, 'INVALID_EMAIL_OR_PASSWORD')
})

t.test('a cookie-bearing POST from an untrusted origin is refused and changes nothing', async (t) => {
  const browser = browserClient(url)
  await browser.post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
  const cookieHeader = (await browser.jar.getCookieString(url))
  const sessionsBefore = (await query(databaseUrl, 'SELECT count(*)::int AS n FROM session')).rows[0].n

  // The page at the other origin rides on the browser's cookie (same site, other port).
  const forged = await fetch(new URL('/api/auth/sign-out', url), {
    method: 'POST',
    headers: { origin: UNTRUSTED_ORIGIN, cookie: cookieHeader, 'content-type': 'application/json' },
    body: '{}'
  })
  t.equal(forged.status, 403)
  t.equal((await forged.json()).code, 'INVALID_ORIGIN')
  t.equal(forged.headers.get('access-control-allow-origin'), null)

  const noOrigin = await fetch(new URL('/api/auth/sign-out', url), {
    method: 'POST', headers: { cookie: cookieHeader, 'content-type': 'application/json' }, body: '{}'
  })
  t.equal(noOrigin.status, 403, 'no Origin at all is refused too')

  t.equal((await query(databaseUrl, 'SELECT count(*)::int AS n FROM session')).rows[0].n, sessionsBefore)
  t.equal((await browser.get('/api/me')).status, 200, 'the session survived')
})

t.test('bodies: form-encoded, empty with a JSON content type, none at all, oversized', async (t) => {
  const form = await fetch(new URL('/api/auth/sign-in/email', url), {
    method: 'POST',
    headers: { origin: 'http://localhost:5173', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email: credentials.email, password: credentials.password }).toString()
  })
  t.equal(form.status, 200, 'Better Auth reads form bodies')
  t.equal((await form.json()).user.email, credentials.email)

  const browser = browserClient(url)
  await browser.post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
  const emptyJson = await browser.post('/api/auth/sign-out', '')
  t.equal(emptyJson.status, 200, `empty JSON body: ${emptyJson.text}`)

  await browser.post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
  const none = await browser.post('/api/auth/sign-out')
  t.equal(none.status, 200, `no body: ${none.text}`)

  const huge = await browser.post('/api/auth/sign-in/email', { email: credentials.email, password: 'x'.repeat(100_000) })
  t.equal(huge.status, 413)
  t.equal(huge.json().code, 'FST_ERR_CTP_BODY_TOO_LARGE')

  const bad = await browser.post('/api/auth/sign-up/email', '{"email":')
  t.ok(bad.status >= 400 && bad.status < 500, `malformed JSON is a 4xx (${bad.status})`)
})

t.test('several Set-Cookie headers and redirects pass through unchanged', async (t) => {
  const browser = browserClient(url)
  const signIn = await browser.post('/api/auth/sign-in/email', { ...credentials, name: undefined, rememberMe: false })
  t.equal(signIn.status, 200)
  const setCookies = signIn.headers.getSetCookie()
  t.ok(setCookies.length >= 2, `two cookies, two headers: ${setCookies.map((c) => c.split('=')[0]).join(', ')}`)
  t.ok(setCookies.some((c) => c.startsWith('better-auth.session_token=')))
  t.ok(setCookies.some((c) => c.startsWith('better-auth.dont_remember=')))

  const redirect = await browser.get('/api/auth/verify-email?token=not-a-token&callbackURL=/welcome')
  t.equal(redirect.status, 302)
  t.match(redirect.headers.get('location'), /^\/welcome\?error=/)
})

t.test('unknown routes answer JSON 404', async (t) => {
  const response = await fetch(new URL('/nope', url))
  t.equal(response.status, 404)
  t.equal((await response.json()).code, 'NOT_FOUND')
})
