// Every account flow end to end, through real HTTP, with the service logging at its most verbose level (trace, with
// the production logger options and their redaction): afterwards no password, token, cookie, code or secret that
// went through the service may be found anywhere in what it logged, as is or URL-, form- or JSON-encoded, nor in
// bytes a log line carries as a serialized Buffer.
//
// Mail goes through an SMTP server in this process that requires the credentials in SMTP_URL; GitHub and Google are
// faked at the HTTP layer (test/helpers/oauth-providers.ts); PostgreSQL is real.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { simpleParser } from 'mailparser'
import * as OTPAuth from 'otpauth'
import { SMTPServer } from 'smtp-server'
import t, { type Test } from 'tap'
import type { CookieJar } from 'tough-cookie'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'
import {
  fakeOAuthProviders, GITHUB_APP, GOOGLE_APP, navigateFrom, SOCIAL_ENV, type GitHubUser, type GoogleUser
} from './helpers/oauth-providers.js'

const started = Date.now()
const APP_NAME = 'Pond'
const SESSION_COOKIE = 'better-auth.session_token'

// --- the secrets: every value that must never reach the log, with what it is --------------------------------------

const secrets = new Map<string, string>()
/** Shorter values cannot be searched for without false alarms (six-digit TOTP codes are the shortest secrets). */
const MIN_LENGTH = 6

function secret (label: string, value: string | null | undefined) {
  if (value === null || value === undefined || value === '') return
  if (value.length < MIN_LENGTH) throw new Error(`secret too short to search for: ${label}`)
  if (!secrets.has(value)) secrets.set(value, label)
}

// Distinctive values with characters that URL, form and JSON encodings change (space, +, &, /, %, @, ").
const unique = () => randomBytes(6).toString('hex')
const PASSWORD = `first pass+word&${unique()}/%`
const WRONG_PASSWORD = `wrong "pass" word ${unique()}`
const PASSWORD_2 = `second/pass word+${unique()}`
const PASSWORD_3 = `third & reset password ${unique()}`
const ADMIN_PASSWORD = `root admin password ${unique()}`
const EVE_PASSWORD = `eve's password ${unique()}`
const BAD_JSON_PASSWORD = `bad-json-password-${unique()}`
const BIG_BODY_PASSWORD = `too-large-body-password-${unique()}`
const AUTH_SECRET = `better-auth-secret-for-log-test-${randomBytes(24).toString('base64url')}`
const SMTP_USER = `pond-mailer-${unique()}`
const SMTP_PASSWORD = `smtp p@ss/word+${unique()}:%`

for (const [label, value] of Object.entries({
  PASSWORD, WRONG_PASSWORD, PASSWORD_2, PASSWORD_3, ADMIN_PASSWORD, EVE_PASSWORD, BAD_JSON_PASSWORD, BIG_BODY_PASSWORD
})) secret(`password ${label}`, value)
secret('BETTER_AUTH_SECRET', AUTH_SECRET)
secret('SMTP password', SMTP_PASSWORD)
// What nodemailer sends for AUTH PLAIN and AUTH LOGIN.
secret('SMTP AUTH PLAIN credentials (base64)', Buffer.from(`\0${SMTP_USER}\0${SMTP_PASSWORD}`).toString('base64'))
secret('SMTP AUTH LOGIN password (base64)', Buffer.from(SMTP_PASSWORD).toString('base64'))
secret('GitHub client secret', GITHUB_APP.clientSecret)
secret('Google client secret', GOOGLE_APP.clientSecret)

// --- the service ---------------------------------------------------------------------------------------------------

const mail = await startAuthenticatingMailServer(t, SMTP_USER, SMTP_PASSWORD)
const providers = fakeOAuthProviders(t)
const smtpUrl = `smtp://${encodeURIComponent(SMTP_USER)}:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${mail.port}`
const { url, databaseUrl, logs, rawLogs } = await buildTestApp(t, {
  listen: true,
  env: {
    // trace is the most verbose level LOG_LEVEL accepts; it adds Fastify's "client error" lines to what debug logs.
    LOG_LEVEL: 'trace',
    APP_NAME,
    BETTER_AUTH_SECRET: AUTH_SECRET,
    MAIL_TRANSPORT: 'smtp',
    SMTP_URL: smtpUrl,
    MAIL_FROM: 'Pond <no-reply@pond.example>',
    ...SOCIAL_ENV
  }
})
secret('SMTP_URL', smtpUrl)
const databasePassword = new URL(databaseUrl).password
if (databasePassword !== '') {
  secret('database password', decodeURIComponent(databasePassword))
  secret('database password (as in the URL)', databasePassword)
  secret('DATABASE_URL', databaseUrl)
}

// --- a browser that records every secret it receives ---------------------------------------------------------------

type Response = Awaited<ReturnType<ReturnType<typeof browserClient>['get']>>

/** Cookie values as set (URL-encoded), decoded, and their signed parts (value and HMAC). */
function recordSetCookies (setCookies: string[], where: string) {
  for (const header of setCookies) {
    const pair = header.split(';', 1)[0]!
    const name = pair.slice(0, pair.indexOf('=')).trim()
    const value = pair.slice(pair.indexOf('=') + 1).trim()
    if (value.length < MIN_LENGTH) continue // cleared cookies
    secret(`${name} cookie (${where})`, value)
    const decoded = decodeURIComponent(value)
    secret(`${name} cookie, decoded (${where})`, decoded)
    const dot = decoded.lastIndexOf('.')
    if (dot <= 0) continue
    const [signed, signature] = [decoded.slice(0, dot), decoded.slice(dot + 1)]
    // The signed part of the dont_remember cookie is just "true": not a secret.
    if (signed.length >= 16) secret(`${name} cookie value (${where})`, signed)
    if (signature.length >= 16) secret(`${name} cookie signature (${where})`, signature)
  }
}

/** Tokens and codes in answers: session tokens, the TOTP URI and its secret, backup codes, the OAuth state. */
function recordBody (response: Response, where: string) {
  let body: unknown
  try {
    body = response.json()
  } catch {
    return
  }
  const visit = (value: unknown, key: string) => {
    if (Array.isArray(value)) {
      if (key === 'backupCodes') for (const code of value) secret(`backup code (${where})`, code as string)
      else for (const item of value) visit(item, key)
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) visit(v, k)
    } else if (typeof value === 'string') {
      if (key === 'token') secret(`session token in an answer (${where})`, value)
      if (key === 'totpURI') {
        secret(`TOTP URI (${where})`, value)
        secret(`TOTP secret (${where})`, new URL(value).searchParams.get('secret'))
      }
      if (key === 'url' && value.startsWith('https://')) {
        secret(`OAuth state in the authorization URL (${where})`, new URL(value).searchParams.get('state'))
      }
    }
  }
  visit(body, '')
}

function recordLocation (response: { headers: Headers } | { location: string | null }, where: string) {
  const location = 'headers' in response ? response.headers.get('location') : response.location
  if (location === null) return
  const params = new URL(location, url).searchParams
  secret(`token in a redirect (${where})`, params.get('token'))
}

/** Requests made to the service over HTTP (each must show in the log as "incoming request"). */
let requestsMade = 0
/** fetch to the service, counted. */
function fetchService (path: string, init?: RequestInit) {
  requestsMade++
  return fetch(new URL(path, url), init)
}
/** The browser follows a redirect to the service (see navigateFrom), counted. */
function navigate (jar: CookieJar, target: string) {
  requestsMade++
  return navigateFrom(jar, target)
}

function browser () {
  const client = browserClient(url)
  const record = (where: string) => (response: Response) => {
    recordSetCookies(response.headers.getSetCookie(), where)
    recordBody(response, where)
    recordLocation(response, where)
    return response
  }
  return {
    ...client,
    get: (path: string, headers?: Record<string, string>) => {
      requestsMade++
      return client.get(path, headers).then(record(`GET ${path.split('?')[0]}`))
    },
    post: (path: string, body?: unknown, headers?: Record<string, string>) => {
      requestsMade++
      return client.post(path, body, headers).then(record(`POST ${path.split('?')[0]}`))
    }
  }
}
type Browser = ReturnType<typeof browser>

/** Asserts the status; the body goes to the diagnostics only on failure. */
const statusIs = (t: Test, response: Response, status: number, message: string) =>
  t.equal(response.status, status, message, { body: response.text })

async function signIn (t: Test, email: string, password: string, status = 200) {
  const b = browser()
  const response = await b.post('/api/auth/sign-in/email', { email, password })
  statusIs(t, response, status, `sign-in of ${email}: ${status}`)
  return { browser: b, response }
}

/** The path and query of an emailed link; its token is recorded. */
function emailedLink (message: ReceivedMail, kind: string) {
  const link = new URL(message.link ?? '')
  if (link.pathname.startsWith('/api/auth/reset-password/')) secret(`${kind} token (emailed link)`, link.pathname.split('/').pop())
  secret(`${kind} token (emailed link)`, link.searchParams.get('token'))
  return link.pathname + link.search
}

const me = async (b: Browser) => (await b.get('/api/me')).status

// --- the flows -------------------------------------------------------------------------------------------------------

const ADA = 'ada@example.com'
const ADA_NEW = 'ada.new@example.com'
let ada: Browser

t.test('sign-up, get-session, /api/me, email verification (resent, link followed)', async (t) => {
  ada = browser()
  const signUp = await ada.post('/api/auth/sign-up/email', { email: ADA, password: PASSWORD, name: 'Ada' })
  statusIs(t, signUp, 200, 'sign-up')
  t.type(signUp.json().token, 'string')
  statusIs(t, await ada.get('/api/auth/get-session'), 200, 'get-session')
  t.equal(await me(ada), 200, '/api/me')

  const first = await mail.waitForMail(ADA, /confirm your email address/)
  emailedLink(first, 'email verification')
  statusIs(t, await browser().post('/api/auth/send-verification-email', { email: ADA }), 200, 'resend verification')
  const second = await mail.waitForMail(ADA, /confirm your email address/)
  const followed = await ada.get(emailedLink(second, 'email verification (resent)'))
  statusIs(t, followed, 302, 'the verification link redirects')
  t.equal((await ada.get('/api/me')).json().user.emailVerified, true, 'verified')
})

t.test('sign-in with the right and a wrong password; sessions: list, revoke one, the others, all', async (t) => {
  await signIn(t, ADA, WRONG_PASSWORD, 401)
  const phone = await signIn(t, ADA, PASSWORD)
  const tablet = await signIn(t, ADA, PASSWORD)
  const listed = await ada.get('/api/auth/list-sessions')
  statusIs(t, listed, 200, 'list-sessions')
  t.equal(listed.json().length, 3)

  statusIs(t, await ada.post('/api/auth/revoke-session', { token: phone.response.json().token }), 200, 'revoke-session')
  t.equal(await me(phone.browser), 401, 'the phone is signed out')
  statusIs(t, await ada.post('/api/auth/revoke-other-sessions'), 200, 'revoke-other-sessions')
  t.equal(await me(tablet.browser), 401, 'the tablet is signed out')
  t.equal(await me(ada), 200)

  const kiosk = await signIn(t, ADA, PASSWORD)
  statusIs(t, await kiosk.browser.post('/api/auth/revoke-sessions'), 200, 'revoke-sessions')
  t.equal(await me(ada), 401, 'every session ended')
  ada = (await signIn(t, ADA, PASSWORD)).browser
  t.equal(await me(ada), 200)
})

t.test('change password (revoking the other sessions)', async (t) => {
  const other = await signIn(t, ADA, PASSWORD)
  const wrong = await ada.post('/api/auth/change-password', { currentPassword: WRONG_PASSWORD, newPassword: PASSWORD_2, revokeOtherSessions: true })
  statusIs(t, wrong, 400, 'a wrong current password is refused')
  const changed = await ada.post('/api/auth/change-password', { currentPassword: PASSWORD, newPassword: PASSWORD_2, revokeOtherSessions: true })
  statusIs(t, changed, 200, 'change-password')
  t.equal(await me(other.browser), 401, 'the other session ended')
  await signIn(t, ADA, PASSWORD, 401)
  await signIn(t, ADA, PASSWORD_2)
})

t.test('password reset: request, follow the link, reset', async (t) => {
  const anonymous = browser()
  statusIs(t, await anonymous.post('/api/auth/request-password-reset', { email: ADA }), 200, 'request-password-reset')
  statusIs(t, await anonymous.post('/api/auth/request-password-reset', { email: 'nobody@example.com' }), 200, 'unknown address')
  const message = await mail.waitForMail(ADA, /reset your password/)
  const landing = await anonymous.get(emailedLink(message, 'password reset'))
  statusIs(t, landing, 302, 'the link redirects to the frontend')
  const token = new URL(landing.headers.get('location')!).searchParams.get('token')
  t.ok(token, 'with the token')
  statusIs(t, await anonymous.post('/api/auth/reset-password', { newPassword: PASSWORD_3, token }), 200, 'reset-password')
  statusIs(t, await anonymous.post('/api/auth/reset-password', { newPassword: PASSWORD_3, token }), 400, 'the token works once')
  t.equal(await me(ada), 401, 'sessions ended')
  ada = (await signIn(t, ADA, PASSWORD_3)).browser
})

t.test('change email: confirmed from the current address, then verified at the new one', async (t) => {
  statusIs(t, await ada.post('/api/auth/change-email', { newEmail: ADA_NEW }), 200, 'change-email')
  const confirmation = await mail.waitForMail(ADA, /confirm changing your email address/)
  statusIs(t, await ada.get(emailedLink(confirmation, 'change-email confirmation')), 302, 'confirmation link')
  const verification = await mail.waitForMail(ADA_NEW, /confirm your email address/)
  statusIs(t, await ada.get(emailedLink(verification, 'new email verification')), 302, 'verification link')
  t.equal((await ada.get('/api/me')).json().user.email, ADA_NEW, 'the address changed')
})

t.test('two-factor: enable, verify, sign in with TOTP and with a backup code, disable', async (t) => {
  statusIs(t, await ada.post('/api/auth/two-factor/enable', { password: WRONG_PASSWORD }), 400, 'enable with a wrong password')
  const enable = await ada.post('/api/auth/two-factor/enable', { password: PASSWORD_3 })
  statusIs(t, enable, 200, 'two-factor/enable')
  const { totpURI, backupCodes } = enable.json() as { totpURI: string, backupCodes: string[] }
  statusIs(t, await ada.post('/api/auth/two-factor/get-totp-uri', { password: PASSWORD_3 }), 200, 'get-totp-uri')
  const totp = OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP
  const code = (offsetSeconds = 0) => {
    const value = totp.generate({ timestamp: Date.now() + offsetSeconds * 1000 })
    secret(`TOTP code ${value}`, value)
    return value
  }
  const accepted = new Set([-30, 0, 30].map((offset) => totp.generate({ timestamp: Date.now() + offset * 1000 })))
  const wrongCode = ['000000', '111111', '222222'].find((candidate) => !accepted.has(candidate))!

  statusIs(t, await ada.post('/api/auth/two-factor/verify-totp', { code: wrongCode }), 401, 'a wrong code')
  statusIs(t, await ada.post('/api/auth/two-factor/verify-totp', { code: code() }), 200, 'enrolment confirmed')

  const step1 = await signIn(t, ADA_NEW, PASSWORD_3)
  t.equal(step1.response.json().twoFactorRedirect, true, 'sign-in asks for the code')
  // The next period's code: accepted (±1 period) and later than the enrolment's, even with replay protection.
  statusIs(t, await step1.browser.post('/api/auth/two-factor/verify-totp', { code: code(30) }), 200, 'sign-in with TOTP')
  t.equal(await me(step1.browser), 200)

  const step1b = await signIn(t, ADA_NEW, PASSWORD_3)
  statusIs(t, await step1b.browser.post('/api/auth/two-factor/verify-backup-code', { code: backupCodes[0] }), 200,
    'sign-in with a backup code')
  t.equal(await me(step1b.browser), 200)
  const step1c = await signIn(t, ADA_NEW, PASSWORD_3)
  statusIs(t, await step1c.browser.post('/api/auth/two-factor/verify-backup-code', { code: backupCodes[0] }), 401,
    'a used backup code')

  statusIs(t, await ada.post('/api/auth/two-factor/disable', { password: PASSWORD_3 }), 200, 'two-factor/disable')
  t.notOk((await signIn(t, ADA_NEW, PASSWORD_3)).response.json().twoFactorRedirect, 'one step again')
})

let eve: { browser: Browser, id: string }

t.test('admin: list users, ban and unban', async (t) => {
  const root = browser()
  statusIs(t, await root.post('/api/auth/sign-up/email', { email: 'root@example.com', password: ADMIN_PASSWORD, name: 'Root' }), 200, 'admin sign-up')
  const eveBrowser = browser()
  const eveSignUp = await eveBrowser.post('/api/auth/sign-up/email', { email: 'eve@example.com', password: EVE_PASSWORD, name: 'Eve' })
  statusIs(t, eveSignUp, 200, 'eve signs up')
  eve = { browser: eveBrowser, id: eveSignUp.json().user.id }
  statusIs(t, await root.get('/api/auth/admin/list-users'), 403, 'not an admin yet')
  const granted = await query(databaseUrl, `UPDATE "user" SET role = 'admin' WHERE email = 'root@example.com'`)
  t.equal(granted.rowCount, 1, 'admin role granted')

  statusIs(t, await root.get('/api/auth/admin/list-users?searchValue=eve&searchField=email&limit=5'), 200, 'list-users')
  statusIs(t, await root.post('/api/auth/admin/ban-user', { userId: eve.id, banReason: 'spam' }), 200, 'ban-user')
  t.equal(await me(eve.browser), 401, 'the banned user is signed out')
  await signIn(t, 'eve@example.com', EVE_PASSWORD, 403)
  statusIs(t, await root.post('/api/auth/admin/unban-user', { userId: eve.id }), 200, 'unban-user')
  eve.browser = (await signIn(t, 'eve@example.com', EVE_PASSWORD)).browser
  statusIs(t, await eve.browser.get('/api/auth/admin/list-users'), 403, 'a user is no admin')
})

t.test('social sign-in: GitHub and Google (code flow), Google id_token, and failed callbacks', async (t) => {
  const octo: GitHubUser = {
    id: 9_100_001,
    login: 'octo-log',
    name: 'Octo Log',
    email: null,
    emails: [{ email: 'octo.log@example.com', primary: true, verified: true }]
  }
  const grace: GoogleUser = { sub: '118000000000000000001', email: 'grace.log@example.com', email_verified: true, name: 'Grace Log' }

  async function roundTrip (provider: 'github' | 'google', user: GitHubUser | GoogleUser) {
    const b = browser()
    const start = await b.post('/api/auth/sign-in/social', { provider, callbackURL: `${TRUSTED_ORIGIN}/after` })
    statusIs(t, start, 200, `${provider}: sign-in/social`)
    const callbackUrl = providers.authorize(start.json().url, user)
    secret(`${provider} authorization code`, new URL(callbackUrl).searchParams.get('code'))
    const result = await navigate(b.jar, callbackUrl)
    recordSetCookies(result.setCookies, `${provider} callback`)
    recordLocation(result, `${provider} callback`)
    t.equal(result.status, 302, `${provider}: the callback redirects`)
    t.equal(result.location, `${TRUSTED_ORIGIN}/after`, `${provider}: signed in`)
    t.equal(await me(b), 200, `${provider}: /api/me`)
    return { browser: b, callbackUrl }
  }

  const github = await roundTrip('github', octo)
  await roundTrip('google', grace)

  // The same callback URL again (state used up), a code GitHub refuses, and a consent the user cancelled.
  const replay = await navigate(github.browser.jar, github.callbackUrl)
  t.match(replay.location, /error=/, 'a replayed callback fails')
  const forged = browser()
  const start = await forged.post('/api/auth/sign-in/social', { provider: 'github', callbackURL: `${TRUSTED_ORIGIN}/after` })
  const state = new URL(start.json().url).searchParams.get('state')!
  const badCode = `refused-code-${unique()}`
  secret('OAuth code GitHub refuses', badCode)
  const refused = await navigate(forged.jar, `${url}/api/auth/callback/github?code=${badCode}&state=${state}`)
  t.match(refused.location, /error=/, 'a refused code fails')
  const cancel = browser()
  const cancelStart = await cancel.post('/api/auth/sign-in/social', { provider: 'github', callbackURL: `${TRUSTED_ORIGIN}/after` })
  const cancelState = new URL(cancelStart.json().url).searchParams.get('state')!
  const cancelled = await navigate(cancel.jar,
    `${url}/api/auth/callback/github?error=access_denied&error_description=The+user+has+denied+your+application+access.&state=${cancelState}`)
  t.match(cancelled.location, /error=/, 'a cancelled consent fails')

  // A Google id_token posted by the frontend (Google One Tap), and one signed by someone else.
  const idTokenUser: GoogleUser = { sub: '118000000000000000002', email: 'onetap.log@example.com', email_verified: true, name: 'One Tap' }
  const idToken = providers.googleIdToken(idTokenUser)
  secret('Google id_token posted to sign-in/social', idToken)
  const oneTap = browser()
  statusIs(t, await oneTap.post('/api/auth/sign-in/social', { provider: 'google', idToken: { token: idToken } }), 200, 'id_token sign-in')
  t.equal(await me(oneTap), 200)
  const forgedIdToken = providers.googleIdToken(idTokenUser, { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey })
  secret('forged Google id_token', forgedIdToken)
  statusIs(t, await browser().post('/api/auth/sign-in/social', { provider: 'google', idToken: { token: forgedIdToken } }), 401,
    'a forged id_token is refused')

  // What went between the service and the providers: codes, PKCE verifiers, client secrets, tokens.
  const exchanges = providers.tokenRequests()
  t.ok(exchanges.filter((request) => request.status === 200).length >= 2, 'codes were exchanged with GitHub and Google')
  for (const request of exchanges) {
    secret(`${request.provider} code (token request)`, request.form?.get('code'))
    secret(`${request.provider} PKCE code_verifier`, request.form?.get('code_verifier'))
    secret(`${request.provider} client_secret (token request)`, request.form?.get('client_secret'))
    const answer = request.answer as { access_token?: string, id_token?: string }
    secret(`${request.provider} access_token`, answer.access_token)
    secret(`${request.provider} id_token`, answer.id_token)
  }
  for (const request of providers.requests) secret(`${request.provider} bearer (API request)`, request.headers.authorization?.replace(/^Bearer /, ''))
})

t.test('failing requests: bad JSON, forged cookies, bearer header, 413, malformed and oversized HTTP', async (t) => {
  const anonymous = browser()
  const badJson = `{"email":"${ADA_NEW}","password":"${BAD_JSON_PASSWORD}"`
  const badAuth = await anonymous.post('/api/auth/sign-in/email', badJson)
  t.ok(badAuth.status >= 400, `bad JSON to Better Auth: ${badAuth.status}`)
  const badOwn = await anonymous.post('/api/me', badJson)
  t.ok(badOwn.status >= 400, `bad JSON to our routes: ${badOwn.status}`)

  const forgedToken = `forged${randomBytes(16).toString('hex')}`
  const forgedSignature = randomBytes(32).toString('base64')
  const forgedCookie = `${SESSION_COOKIE}=${encodeURIComponent(`${forgedToken}.${forgedSignature}`)}`
  secret('forged session token', forgedToken)
  secret('forged cookie signature', forgedSignature)
  secret('forged cookie header', forgedCookie)
  t.equal((await fetchService('/api/me', { headers: { cookie: forgedCookie } })).status, 401, 'forged cookie: /api/me')
  const forgedSession = await fetchService('/api/auth/get-session', { headers: { cookie: forgedCookie } })
  t.equal(forgedSession.status, 200, 'forged cookie: get-session answers')
  t.equal(await forgedSession.text(), 'null', 'with no session')

  const bearer = `bearer-${randomBytes(16).toString('hex')}`
  secret('Authorization bearer token', bearer)
  t.equal((await fetchService('/api/me', { headers: { authorization: `Bearer ${bearer}` } })).status, 401, 'bearer header: 401')

  const padding = 'x'.repeat(70 * 1024)
  const tooBig = await anonymous.post('/api/auth/sign-in/email', { email: ADA_NEW, password: BIG_BODY_PASSWORD, padding })
  statusIs(t, tooBig, 413, 'a body over the auth limit: 413')
  const tooBigOwn = await anonymous.post('/api/nothing-here', { password: BIG_BODY_PASSWORD, padding: 'x'.repeat(1100 * 1024) })
  statusIs(t, tooBigOwn, 413, 'a body over the server limit: 413')

  // A request Node's HTTP parser refuses, carrying a real session cookie (trace logs "client error").
  const cookie = await ada.jar.getCookieString(url)
  t.match(cookie, SESSION_COOKIE, 'a signed-in browser\'s cookies')
  const malformed = await rawHttp(`GET /api/me HTTP/1.1\r\nHost: localhost\r\nCookie: ${cookie}\r\nAuthorization: Bearer ${bearer}\r\nthis is not a header\r\n\r\n`)
  t.match(malformed, /^HTTP\/1\.1 400/, 'a malformed request: 400')
  const oversized = await rawHttp(`GET /api/me HTTP/1.1\r\nHost: localhost\r\nCookie: ${cookie}; filler=${'f'.repeat(20_000)}\r\n\r\n`)
  t.match(oversized, /^HTTP\/1\.1 431/, 'headers over the limit: 431')
  t.equal(await me(ada), 200, 'the browser is still signed in')
})

t.test('delete account: request, follow the emailed link', async (t) => {
  const asked = await eve.browser.post('/api/auth/delete-user', {})
  statusIs(t, asked, 200, 'delete-user')
  const message = await mail.waitForMail('eve@example.com', /confirm deleting your account/)
  statusIs(t, await eve.browser.get(emailedLink(message, 'delete account')), 302, 'the link deletes and redirects')
  const { rows } = await query(databaseUrl, 'SELECT count(*)::int AS n FROM "user" WHERE id = $1', [eve.id])
  t.equal(rows[0].n, 0, 'the user is gone')
  await signIn(t, 'eve@example.com', EVE_PASSWORD, 401)
})

t.test('sign-out', async (t) => {
  statusIs(t, await ada.post('/api/auth/sign-out'), 200, 'sign-out')
  t.equal(await me(ada), 401, 'signed out')
})

t.test('nothing secret is in the logs', async (t) => {
  // Let the last mails and their log lines be written.
  await mail.settled()
  await new Promise((resolve) => setTimeout(resolve, 200))
  // The links of the mails no flow followed (the sign-ups of the admin and of eve) count too.
  for (const message of mail.all) emailedLink(message, `mail "${message.subject}"`)

  // Not vacuous: the flows ran and were logged, at trace level, through the production options.
  const incoming = logs.filter((line) => line.msg === 'incoming request')
  t.equal(incoming.length, requestsMade, `every request made over HTTP was logged (${requestsMade})`)
  t.ok(logs.some((line) => (line.level as number) <= 20 && String(line.msg).startsWith('client error')), 'client errors were logged below info')
  t.ok(logs.some((line) => line.component === 'better-auth'), 'Better Auth\'s own messages reached the log')
  const urls = new Set(incoming.map((line) => (line.req as { url: string }).url.split('?')[0]))
  for (const path of [
    '/api/auth/sign-up/email', '/api/auth/sign-in/email', '/api/auth/get-session', '/api/me', '/api/auth/verify-email',
    '/api/auth/send-verification-email', '/api/auth/request-password-reset', '/api/auth/reset-password/[redacted]',
    '/api/auth/reset-password', '/api/auth/change-password', '/api/auth/change-email', '/api/auth/list-sessions',
    '/api/auth/revoke-session', '/api/auth/revoke-other-sessions', '/api/auth/revoke-sessions',
    '/api/auth/two-factor/enable', '/api/auth/two-factor/get-totp-uri', '/api/auth/two-factor/verify-totp',
    '/api/auth/two-factor/verify-backup-code', '/api/auth/two-factor/disable', '/api/auth/admin/list-users',
    '/api/auth/admin/ban-user', '/api/auth/admin/unban-user', '/api/auth/sign-in/social', '/api/auth/callback/github',
    '/api/auth/callback/google', '/api/auth/delete-user', '/api/auth/delete-user/callback', '/api/auth/sign-out'
  ]) t.ok(urls.has(path), `logged: ${path}`)
  t.ok(rawLogs().includes('[redacted]'), 'redaction was at work')
  const sent = logs.filter((line) => line.msg === 'mail sent').length
  t.ok(sent >= 8, `verification (5), reset, change-email confirmation and deletion mails were sent (${sent})`)
  t.equal(sent, mail.received(), 'through the SMTP server')
  t.same([...mail.authenticatedAs], [SMTP_USER], 'which nodemailer logged in to with SMTP_URL\'s credentials')

  // Not vacuous either: every kind of secret was collected from the flows.
  const labels = [...secrets.values()]
  const kinds: Record<string, RegExp> = {
    'passwords (old, new, wrong, in refused requests)': /^password /,
    'session tokens (cookie values)': /^better-auth\.session_token cookie value/,
    'cookie signatures': /cookie signature/,
    'two-factor cookie': /^better-auth\.two_factor cookie value/,
    'OAuth state cookie': /^better-auth\.state cookie value/,
    'TOTP URI': /^TOTP URI/,
    'TOTP secret': /^TOTP secret/,
    'TOTP codes': /^TOTP code/,
    'backup codes': /^backup code/,
    'email verification tokens': /verification.* token \(emailed link\)$/,
    'password reset token': /^password reset token/,
    'change-email confirmation token': /^change-email confirmation token/,
    'delete-account token': /^delete account token/,
    'OAuth authorization codes': /authorization code$/,
    'PKCE code verifiers': /code_verifier$/,
    'provider access tokens': /access_token$/,
    'id_tokens': /id_token/,
    'OAuth client secrets': /client secret$/,
    BETTER_AUTH_SECRET: /^BETTER_AUTH_SECRET$/,
    'SMTP password': /^SMTP password$/,
    ...(databasePassword === '' ? {} : { 'database password': /^database password$/ })
  }
  for (const [kind, pattern] of Object.entries(kinds)) {
    const count = labels.filter((label) => pattern.test(label)).length
    t.ok(count > 0, `collected: ${kind} (${count})`)
  }

  // Every field of every line (keys, strings, numbers, and the bytes of serialized Buffers), then the raw text, for
  // every secret in every encoding. Six-digit codes only count as whole numbers (not inside a timestamp).
  const fields = logs.map((line) => fieldsOf(line))
  const raw = rawLogs()
  let leaks = 0
  for (const [value, label] of secrets) {
    for (const form of encodings(value)) {
      const contains = /^\d+$/.test(form)
        ? ((pattern) => (text: string) => pattern.test(text))(new RegExp(`(?<![0-9])${form}(?![0-9])`))
        : (text: string) => text.includes(form)
      const hits = logs.flatMap((line, index) => fields[index]!
        .filter(([, text]) => contains(text))
        .map(([path]) => `level ${line.level} "${line.msg}" (reqId ${line.reqId ?? '-'}): ${path}`))
      if (hits.length === 0 && contains(raw)) hits.push('the raw log text')
      if (hits.length === 0) continue
      leaks++
      t.fail(`in the logs: ${label}${form === value ? '' : ` (as ${JSON.stringify(form)})`}`, { found: [...new Set(hits)] })
    }
  }
  t.equal(leaks, 0, `none of ${secrets.size} distinct secret values is in the ${logs.length} log lines`)
  t.comment(`${secrets.size} distinct secret values checked in ${logs.length} log lines; ${Date.now() - started} ms from start`)
})

// --- helpers -----------------------------------------------------------------------------------------------------------

/** The value as is, URL-encoded, form-encoded and JSON-escaped. */
function encodings (value: string): string[] {
  return [...new Set([
    value,
    encodeURIComponent(value),
    new URLSearchParams({ v: value }).toString().slice(2),
    JSON.stringify(value).slice(1, -1)
  ])]
}

/** Every key and value of a parsed log line as [path, text]; a serialized Buffer ({type, data}) as its bytes. */
function fieldsOf (line: unknown): Array<[string, string]> {
  const found: Array<[string, string]> = []
  const visit = (value: unknown, path: string) => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, `${path}[${index}]`))
    } else if (value !== null && typeof value === 'object') {
      const { type, data } = value as { type?: unknown, data?: unknown }
      if (type === 'Buffer' && Array.isArray(data)) {
        found.push([`${path} (a Buffer, ${data.length} bytes)`, Buffer.from(data as number[]).toString('latin1')])
        return
      }
      for (const [key, item] of Object.entries(value)) {
        const itemPath = path === '' ? key : `${path}.${key}`
        found.push([`${itemPath} (key)`, key])
        visit(item, itemPath)
      }
    } else if (value !== undefined && value !== null) {
      found.push([path, String(value)])
    }
  }
  visit(line, '')
  return found
}

/** Sends raw bytes to the service and returns what it answers before closing. */
function rawHttp (request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(url).port)
    const socket = connect(port, '127.0.0.1', () => socket.end(request))
    let answer = ''
    socket.on('data', (chunk) => { answer += chunk.toString('latin1') })
    socket.on('error', (error) => (answer === '' ? reject(error) : resolve(answer)))
    socket.on('close', () => resolve(answer))
  })
}

interface ReceivedMail { to: string[], subject: string, link: string | undefined }

/**
 * An SMTP server in this process that requires authentication (AUTH PLAIN or LOGIN, without TLS on loopback) with
 * exactly `user` and `password`, so the credentials in SMTP_URL are really used. (test/helpers/mail-server.ts
 * accepts mail without AUTH and refuses it with.)
 */
async function startAuthenticatingMailServer (t: Test, user: string, password: string) {
  const messages: ReceivedMail[] = []
  /** Every message received, taken or not. */
  const all: ReceivedMail[] = []
  const authenticatedAs = new Set<string>()
  const pending = new Set<Promise<unknown>>()
  const server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth (auth, _session, callback) {
      if (auth.username !== user || auth.password !== password) return callback(new Error('Invalid username or password'))
      authenticatedAs.add(auth.username)
      callback(null, { user: auth.username })
    },
    onData (stream, session, callback) {
      const parsing = simpleParser(stream).then((parsed) => {
        const text = parsed.text ?? ''
        const message = {
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          subject: parsed.subject ?? '',
          link: /https?:\/\/\S+/.exec(text)?.[0]
        }
        messages.push(message)
        all.push(message)
        callback()
      }, callback)
      pending.add(parsing)
      void parsing.finally(() => pending.delete(parsing))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return {
    port: (server.server.address() as AddressInfo).port,
    authenticatedAs,
    all,
    received: () => all.length,
    settled: () => Promise.allSettled([...pending]),
    /** The next message to `to` whose subject matches, waiting up to 5 s. */
    async waitForMail (to: string, subject: RegExp): Promise<ReceivedMail> {
      const deadline = Date.now() + 5_000
      for (;;) {
        const index = messages.findIndex((message) => message.to.includes(to) && subject.test(message.subject))
        if (index !== -1) return messages.splice(index, 1)[0]!
        if (Date.now() > deadline) throw new Error(`no mail to ${to} matching ${subject} within 5 s`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
}
