import { createHash, generateKeyPairSync } from 'node:crypto'
import * as OTPAuth from 'otpauth'
import t from 'tap'
import { buildTestApp, freePort, TRUSTED_ORIGIN, UNTRUSTED_ORIGIN } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'
import { metricsScraper, moved } from './helpers/metrics.js'
import {
  fakeOAuthProviders, GITHUB_APP, GOOGLE_APP, navigateFrom, SOCIAL_ENV, type GitHubUser, type GoogleUser
} from './helpers/oauth-providers.js'

// GitHub's and Google's servers are faked at the HTTP layer; everything else (our server, Better Auth,
// PostgreSQL, the browser's cookies) is real.
const providers = fakeOAuthProviders(t)
// Metrics on: social sign-ins are counted at the callback (src/plugins/metrics.ts).
const { app, url, databaseUrl, rawLogs } = await buildTestApp(t, { listen: true, env: { ...SOCIAL_ENV, METRICS_PORT: String(await freePort()) } })
const scrapeMetrics = await metricsScraper(app)

const AFTER = `${TRUSTED_ORIGIN}/after`
const FAILED = `${TRUSTED_ORIGIN}/sign-in-failed`
/** Where failures go when the client named no errorCallbackURL: the frontend (onAPIError.errorURL). */
const ERROR_PAGE = `${TRUSTED_ORIGIN}/auth-error`
const SESSION_COOKIE = 'better-auth.session_token'

type Provider = 'github' | 'google'

/** A page on the frontend asks for the provider's authorization URL. */
async function startSignIn (provider: Provider, body: Record<string, unknown> = {}, baseUrl = url) {
  const browser = browserClient(baseUrl)
  const response = await browser.post('/api/auth/sign-in/social', { provider, callbackURL: AFTER, ...body })
  if (response.status !== 200) throw new Error(`sign-in/social answered ${response.status}: ${response.text}`)
  return { browser, response, authorizationUrl: response.json().url as string }
}

/** The whole round trip: our server, the provider's consent page, back to our callback. */
async function signInWith (provider: Provider, user: GitHubUser | GoogleUser, body: Record<string, unknown> = {}, baseUrl = url) {
  const { browser, authorizationUrl } = await startSignIn(provider, body, baseUrl)
  const callbackUrl = providers.authorize(authorizationUrl, user)
  const result = await navigateFrom(browser.jar, callbackUrl)
  return { browser, authorizationUrl, callbackUrl, result }
}

/** A session cookie was set (not merely cleared). */
const hasSession = (setCookies: string[]) => setCookies.some((cookie) =>
  cookie.startsWith(`${SESSION_COOKIE}=`) && !cookie.startsWith(`${SESSION_COOKIE}=;`) && !/max-age=0\b/i.test(cookie))

async function count (sql: string, params: unknown[] = []): Promise<number> {
  return (await query(databaseUrl, `SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0].n
}

async function accountsOf (userId: string) {
  const { rows } = await query(databaseUrl,
    'SELECT "providerId", "accountId" FROM account WHERE "userId" = $1 ORDER BY "providerId"', [userId])
  return rows
}

async function userByEmail (email: string) {
  return (await query(databaseUrl, 'SELECT id, "emailVerified" FROM "user" WHERE email = $1', [email])).rows[0]
}

async function signUpVerified (email: string) {
  const browser = browserClient(url)
  const signUp = await browser.post('/api/auth/sign-up/email', { email, password: 'correct horse battery', name: 'Local' })
  if (signUp.status !== 200) throw new Error(`sign-up answered ${signUp.status}: ${signUp.text}`)
  const userId: string = signUp.json().user.id
  await query(databaseUrl, 'UPDATE "user" SET "emailVerified" = true WHERE id = $1', [userId])
  return userId
}

t.test('without client id and secret, social sign-in is refused with a 4xx', async (t) => {
  const plain = await buildTestApp(t, { listen: true })
  const browser = browserClient(plain.url)
  for (const provider of ['github', 'google']) {
    const response = await browser.post('/api/auth/sign-in/social', { provider, callbackURL: AFTER })
    t.equal(response.status, 404, `${provider}: ${response.text}`)
    t.equal(response.json().code, 'PROVIDER_NOT_FOUND')
    t.equal(response.headers.get('location'), null)
  }
  const unknown = await browser.post('/api/auth/sign-in/social', { provider: 'myspace', callbackURL: AFTER })
  t.equal(unknown.status, 404, unknown.text)
  t.equal(unknown.json().code, 'PROVIDER_NOT_FOUND')
  t.same(await browser.cookies(), [], 'no state cookie')
})

t.test('sign-in/social answers the GitHub authorization URL and sets the state cookie', async (t) => {
  const { browser, response, authorizationUrl } = await startSignIn('github')
  t.equal(response.json().redirect, true)
  t.equal(response.headers.get('location'), authorizationUrl)

  const authorize = new URL(authorizationUrl)
  t.equal(authorize.origin + authorize.pathname, 'https://github.com/login/oauth/authorize')
  const params = Object.fromEntries(authorize.searchParams)
  t.match(params, {
    response_type: 'code',
    client_id: GITHUB_APP.clientId,
    redirect_uri: `${url}/api/auth/callback/github`,
    scope: 'read:user user:email',
    state: /^[\w-]{32,}$/,
    // Better Auth sends PKCE to GitHub too.
    code_challenge: /^[\w-]{43}$/,
    code_challenge_method: 'S256'
  })
  t.notOk(JSON.stringify(params).includes(GITHUB_APP.clientSecret), 'no secret in the URL')

  const cookies = await browser.cookies()
  const state = cookies.find((cookie) => cookie.key === 'better-auth.state')
  t.ok(state, `state cookie set (${cookies.map((cookie) => cookie.key).join(', ')})`)
  t.equal(state?.httpOnly, true)
  t.equal(state?.sameSite, 'lax', 'Lax, so it comes back on the redirect from github.com')
  t.ok(decodeURIComponent(state?.value ?? '').startsWith(`${params.state}.`), 'it holds the state, signed')
  t.notOk(cookies.some((cookie) => cookie.key === SESSION_COOKIE))
})

t.test('sign-in/social answers the Google authorization URL with PKCE', async (t) => {
  const { browser, authorizationUrl } = await startSignIn('google')
  const authorize = new URL(authorizationUrl)
  t.equal(authorize.origin + authorize.pathname, 'https://accounts.google.com/o/oauth2/v2/auth')
  t.match(Object.fromEntries(authorize.searchParams), {
    response_type: 'code',
    client_id: GOOGLE_APP.clientId,
    redirect_uri: `${url}/api/auth/callback/google`,
    scope: 'email profile openid',
    state: /^[\w-]{32,}$/,
    code_challenge: /^[\w-]{43}$/,
    code_challenge_method: 'S256'
  })
  t.ok((await browser.cookies()).some((cookie) => cookie.key === 'better-auth.state'))
})

t.test('redirect targets outside TRUSTED_ORIGINS are refused with 403', async (t) => {
  const cases = [
    [{ callbackURL: `${UNTRUSTED_ORIGIN}/after` }, 'INVALID_CALLBACK_URL'],
    [{ callbackURL: 'https://evil.example/after' }, 'INVALID_CALLBACK_URL'],
    [{ callbackURL: AFTER, errorCallbackURL: 'https://evil.example/failed' }, 'INVALID_ERROR_CALLBACK_URL'],
    [{ callbackURL: AFTER, newUserCallbackURL: 'https://evil.example/welcome' }, 'INVALID_NEW_USER_CALLBACK_URL']
  ] as const
  for (const [body, code] of cases) {
    for (const provider of ['github', 'google']) {
      const browser = browserClient(url)
      const response = await browser.post('/api/auth/sign-in/social', { provider, ...body })
      t.equal(response.status, 403, `${provider} ${JSON.stringify(body)}: ${response.text}`)
      t.equal(response.json().code, code)
      t.same(await browser.cookies(), [], 'no state cookie')
    }
  }
})

t.test('GitHub: the callback exchanges the code, creates the user and its account, and signs in', async (t) => {
  const octo: GitHubUser = {
    id: 583231,
    login: 'octo-ada',
    name: 'Ada Octo',
    email: null,
    emails: [
      { email: 'ada@users.noreply.github.com', primary: false, verified: true },
      { email: 'ada.octo@example.com', primary: true, verified: true }
    ]
  }
  const usersBefore = await count('"user"')
  const seen = providers.requests.length
  const metricsBefore = await scrapeMetrics()
  const { browser, authorizationUrl, callbackUrl, result } = await signInWith('github', octo)

  t.equal(callbackUrl.split('?')[0], `${url}/api/auth/callback/github`)
  t.equal(result.status, 302)
  t.equal(result.location, AFTER)
  t.ok(hasSession(result.setCookies), 'session cookie set')

  // What GitHub's servers received.
  const requests = providers.requests.slice(seen)
  t.same(requests.map((request) => `${request.method} ${request.url} ${request.status}`), [
    'POST https://github.com/login/oauth/access_token 200',
    'GET https://api.github.com/user 200',
    'GET https://api.github.com/user/emails 200'
  ])
  const [token, profile, emails] = requests
  const form = Object.fromEntries(token!.form!)
  const challenge = new URL(authorizationUrl).searchParams.get('code_challenge')
  t.equal(createHash('sha256').update(form.code_verifier ?? '').digest('base64url'), challenge, 'PKCE verifier matches')
  t.same(form, {
    grant_type: 'authorization_code',
    code: new URL(callbackUrl).searchParams.get('code'),
    code_verifier: form.code_verifier,
    redirect_uri: `${url}/api/auth/callback/github`,
    client_id: GITHUB_APP.clientId,
    client_secret: GITHUB_APP.clientSecret
  })
  t.match(token!.headers.accept, /application\/json/, 'asks GitHub for JSON (its default is form-encoded)')
  t.notMatch(token!.answer, { error: String }, 'GitHub accepted the exchange')
  const accessToken = (token!.answer as { access_token: string }).access_token
  for (const request of [profile!, emails!]) {
    t.equal(request.headers.authorization, `Bearer ${accessToken}`)
    t.ok(request.headers['user-agent'], 'GitHub requires a User-Agent')
  }

  const me = await browser.get('/api/me')
  t.equal(me.status, 200, me.text)
  t.match(me.json().user, {
    email: 'ada.octo@example.com',
    name: 'Ada Octo',
    emailVerified: true,
    image: 'https://avatars.githubusercontent.com/u/583231?v=4'
  })
  const userId: string = me.json().user.id
  t.equal(await count('"user"'), usersBefore + 1)
  t.same(await accountsOf(userId), [{ providerId: 'github', accountId: '583231' }])

  // The same callback again (a replayed or leaked URL): the state was used up.
  const replay = await navigateFrom(browser.jar, callbackUrl)
  t.equal(replay.status, 302)
  t.equal(replay.location, `${ERROR_PAGE}?error=state_mismatch`)
  t.notOk(hasSession(replay.setCookies))
  t.equal(providers.requests.length, seen + 3, 'GitHub was not asked again')

  // Signing in again later: the same user, no new account.
  const again = await signInWith('github', { ...octo, name: 'Ada O.' })
  t.equal(again.result.location, AFTER)
  t.ok(hasSession(again.result.setCookies))
  t.equal((await again.browser.get('/api/me')).json().user.id, userId)
  t.equal(await count('"user"'), usersBefore + 1)
  t.same(await accountsOf(userId), [{ providerId: 'github', accountId: '583231' }])

  // The audit trail: a sign-up and two sign-ins through GitHub; the replayed callback signed nobody in.
  const { rows: events } = await query(databaseUrl,
    'SELECT type, detail FROM audit_event WHERE "userId" = $1 ORDER BY "createdAt", id', [userId])
  t.same(events.map((event) => [event.type, event.detail.method]),
    [['sign_up', 'github'], ['sign_in.succeeded', 'github'], ['sign_in.succeeded', 'github']])
  // And the metrics: two social sign-ins, and the replay as a failed one.
  const metricsAfter = await scrapeMetrics()
  const social = (outcome: string) => moved(metricsBefore, metricsAfter, 'pond_auth_sign_ins_total', { method: 'social', outcome })
  t.same({ succeeded: social('succeeded'), failed: social('failed') }, { succeeded: 2, failed: 1 })
})

t.test('Google: the callback exchanges the code (PKCE), reads the id_token, creates the user and signs in', async (t) => {
  const grace: GoogleUser = {
    sub: '109876543210987654321',
    email: 'grace@example.com',
    email_verified: true,
    name: 'Grace Hopper',
    picture: 'https://lh3.googleusercontent.com/a/grace'
  }
  const usersBefore = await count('"user"')
  const seen = providers.tokenRequests().length
  const { browser, authorizationUrl, callbackUrl, result } = await signInWith('google', grace)

  t.equal(callbackUrl.split('?')[0], `${url}/api/auth/callback/google`)
  t.equal(result.status, 302)
  t.equal(result.location, AFTER)
  t.ok(hasSession(result.setCookies), 'session cookie set')

  const tokens = providers.tokenRequests().slice(seen)
  t.equal(tokens.length, 1)
  const token = tokens[0]!
  t.equal(token.url, 'https://oauth2.googleapis.com/token')
  t.equal(token.status, 200, JSON.stringify(token.answer))
  const form = Object.fromEntries(token.form!)
  const challenge = new URL(authorizationUrl).searchParams.get('code_challenge')
  t.equal(createHash('sha256').update(form.code_verifier ?? '').digest('base64url'), challenge, 'PKCE verifier matches')
  t.same(form, {
    grant_type: 'authorization_code',
    code: new URL(callbackUrl).searchParams.get('code'),
    code_verifier: form.code_verifier,
    redirect_uri: `${url}/api/auth/callback/google`,
    client_id: GOOGLE_APP.clientId,
    client_secret: GOOGLE_APP.clientSecret
  })

  const me = await browser.get('/api/me')
  t.equal(me.status, 200, me.text)
  t.match(me.json().user, { email: 'grace@example.com', name: 'Grace Hopper', emailVerified: true, image: grace.picture })
  t.equal(await count('"user"'), usersBefore + 1)
  t.same(await accountsOf(me.json().user.id), [{ providerId: 'google', accountId: grace.sub }])
})

t.test('a verified email+password user signing in with a provider that verified the same email gets it linked', async (t) => {
  const email = 'lin@example.com'
  const userId = await signUpVerified(email)
  const usersBefore = await count('"user"')

  const github = await signInWith('github', {
    id: 1000001, login: 'lin', name: 'Lin', email, emails: [{ email, primary: true, verified: true }]
  })
  t.equal(github.result.location, AFTER)
  t.ok(hasSession(github.result.setCookies))
  t.equal((await github.browser.get('/api/me')).json().user.id, userId, 'signed in as the existing user')

  const google = await signInWith('google', { sub: '200000000000000000002', email, email_verified: true, name: 'Lin' })
  t.equal(google.result.location, AFTER)
  t.equal((await google.browser.get('/api/me')).json().user.id, userId)

  t.equal(await count('"user"'), usersBefore, 'no new user')
  t.same(await accountsOf(userId), [
    { providerId: 'credential', accountId: userId },
    { providerId: 'github', accountId: '1000001' },
    { providerId: 'google', accountId: '200000000000000000002' }
  ])
  const password = await browserClient(url).post('/api/auth/sign-in/email', { email, password: 'correct horse battery' })
  t.equal(password.status, 200, 'the password still works')
})

t.test('an email the provider has not verified does not take over an existing account', async (t) => {
  const email = 'victim@example.com'
  const victimId = await signUpVerified(email)
  const usersBefore = await count('"user"')
  const sessionsBefore = await count('session')

  const github = await signInWith('github', {
    id: 666001, login: 'mallory', name: 'Mallory', email: null, emails: [{ email, primary: true, verified: false }]
  }, { errorCallbackURL: FAILED })
  t.equal(github.result.status, 302)
  t.equal(github.result.location, `${FAILED}?error=account_not_linked`)
  t.notOk(hasSession(github.result.setCookies))

  const google = await signInWith('google', { sub: '666000000000000000002', email, email_verified: false, name: 'Mallory' })
  t.equal(google.result.location, `${ERROR_PAGE}?error=account_not_linked`)
  t.notOk(hasSession(google.result.setCookies))

  t.equal(await count('"user"'), usersBefore, 'no new user')
  t.equal(await count('session'), sessionsBefore, 'no session')
  t.same(await accountsOf(victimId), [{ providerId: 'credential', accountId: victimId }])
  t.equal(await count('account WHERE "accountId" IN ($1, $2)', ['666001', '666000000000000000002']), 0)
})

t.test('REQUIRE_EMAIL_VERIFICATION also holds for social sign-in: an unverified provider email gets no session', async (t) => {
  const strict = await buildTestApp(t, { listen: true, env: { ...SOCIAL_ENV, REQUIRE_EMAIL_VERIFICATION: 'true' } })
  const unverified = await signInWith('github', {
    id: 777001, login: 'newcomer', name: 'Newcomer', email: null, emails: [{ email: 'newcomer@example.com', primary: true, verified: false }]
  }, {}, strict.url)
  t.equal(unverified.result.status, 302)
  t.notOk(hasSession(unverified.result.setCookies), 'no session for an unverified address')
  t.equal((await unverified.browser.get('/api/me')).status, 401)

  const verified = await signInWith('google', { sub: '777000000000000000002', email: 'verified@example.com', email_verified: true, name: 'Verified' }, {}, strict.url)
  t.equal(verified.result.location, AFTER)
  t.ok(hasSession(verified.result.setCookies), 'a provider-verified address signs in')
})

t.test('a provider-verified email does not join a local account whose email was never verified', async (t) => {
  // Someone registered the address with a password and never proved they own it; its owner signs in with Google.
  const email = 'squatted@example.com'
  const signUp = await browserClient(url).post('/api/auth/sign-up/email', { email, password: 'squatter password', name: 'Squatter' })
  t.equal(signUp.status, 200, signUp.text)
  const squatterId: string = signUp.json().user.id
  const usersBefore = await count('"user"')

  const owner = await signInWith('google', { sub: '300000000000000000003', email, email_verified: true, name: 'Owner' })
  t.equal(owner.result.location, `${ERROR_PAGE}?error=account_not_linked`)
  t.notOk(hasSession(owner.result.setCookies))
  t.equal(await count('"user"'), usersBefore)
  t.same(await accountsOf(squatterId), [{ providerId: 'credential', accountId: squatterId }])
  t.equal((await userByEmail(email))?.emailVerified, false, 'and the local address stays unverified')
})

t.test('callbacks without the right state, or that the provider failed, never sign in', async (t) => {
  const sessionsBefore = await count('session')
  const tokensBefore = providers.tokenRequests().length
  const user: GitHubUser = { id: 777001, login: 'eve', name: 'Eve', email: null, emails: [{ email: 'eve@example.com', primary: true, verified: true }] }

  const { browser, authorizationUrl } = await startSignIn('github', { errorCallbackURL: FAILED })
  const callbackUrl = new URL(providers.authorize(authorizationUrl, user))
  const code = callbackUrl.searchParams.get('code')!
  const state = callbackUrl.searchParams.get('state')!
  const callback = (params: Record<string, string>) => `${url}/api/auth/callback/github?${new URLSearchParams(params)}`

  const cases: Array<[string, string, string]> = [
    ['no state', callback({ code }), `${ERROR_PAGE}?error=state_not_found`],
    ['an unknown state', callback({ code, state: 'x'.repeat(32) }), `${ERROR_PAGE}?error=state_mismatch`],
    ['the state of another sign-in', callback({ code, state: new URL((await startSignIn('github')).authorizationUrl).searchParams.get('state')! }), `${ERROR_PAGE}?error=state_mismatch`]
  ]
  for (const [name, target, location] of cases) {
    const result = await navigateFrom(browser.jar, target)
    t.equal(result.status, 302, name)
    t.equal(result.location, location, name)
    t.notOk(hasSession(result.setCookies), name)
  }

  // Login CSRF: someone hands the victim the callback URL of their own sign-in; the victim's browser lacks the
  // state cookie.
  const otherBrowser = browserClient(url)
  const forced = await navigateFrom(otherBrowser.jar, callbackUrl.href)
  t.equal(forced.location, `${FAILED}?error=state_mismatch`, 'a callback from a browser without the state cookie')
  t.notOk(hasSession(forced.setCookies))
  t.equal(providers.tokenRequests().length, tokensBefore, 'none of these reached the token endpoint')

  // The user cancels on GitHub's consent page.
  const denied = await startSignIn('github', { errorCallbackURL: FAILED })
  const deniedState = new URL(denied.authorizationUrl).searchParams.get('state')!
  const cancel = await navigateFrom(denied.browser.jar, callback({
    error: 'access_denied', error_description: 'The user has denied your application access.', state: deniedState
  }))
  t.equal(cancel.location, `${FAILED}?error=access_denied&error_description=The+user+has+denied+your+application+access.`)
  t.notOk(hasSession(cancel.setCookies))

  // A code GitHub never issued: the exchange fails.
  const forged = await startSignIn('github', { errorCallbackURL: FAILED })
  const forgedState = new URL(forged.authorizationUrl).searchParams.get('state')!
  const badCode = await navigateFrom(forged.browser.jar, callback({ code: 'not-a-code', state: forgedState }))
  t.equal(badCode.location, `${FAILED}?error=invalid_code`)
  t.notOk(hasSession(badCode.setCookies))
  const exchanges = providers.tokenRequests().slice(tokensBefore)
  t.same(exchanges.map((request) => (request.answer as { error?: string }).error), ['bad_verification_code'])

  t.equal(await count('session'), sessionsBefore, 'no session was created')
  t.equal(await userByEmail('eve@example.com'), undefined, 'no user was created')
  t.equal((await browser.get('/api/me')).status, 401)
})

t.test('Google id_token sign-in checks the token against Google\'s published keys', async (t) => {
  const user: GoogleUser = { sub: '400000000000000000004', email: 'idtoken@example.com', email_verified: true, name: 'Id Token' }
  const post = (token: string) => browserClient(url).post('/api/auth/sign-in/social', { provider: 'google', idToken: { token } })
  const now = Math.floor(Date.now() / 1000)
  const foreignKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey

  const refused = {
    'signed by another key': providers.googleIdToken(user, { key: foreignKey }),
    'for another client': providers.googleIdToken(user, { claims: { aud: 'someone-else.apps.googleusercontent.com' } }),
    'from another issuer': providers.googleIdToken(user, { claims: { iss: 'https://evil.example' } }),
    expired: providers.googleIdToken(user, { claims: { iat: now - 7200, exp: now - 3600 } })
  }
  for (const [name, token] of Object.entries(refused)) {
    const response = await post(token)
    t.equal(response.status, 401, `${name}: ${response.text}`)
    t.equal(response.json().code, 'INVALID_TOKEN', name)
    t.notOk(hasSession(response.headers.getSetCookie()), name)
  }
  t.equal(await userByEmail(user.email), undefined)

  const jwksFetches = providers.requests.filter((request) => request.url === 'https://www.googleapis.com/oauth2/v3/certs').length
  const accepted = await post(providers.googleIdToken(user))
  t.equal(accepted.status, 200, accepted.text)
  t.match(accepted.json(), { redirect: false, user: { email: user.email, emailVerified: true } })
  t.ok(hasSession(accepted.headers.getSetCookie()))
  t.ok(providers.requests.filter((request) => request.url === 'https://www.googleapis.com/oauth2/v3/certs').length > jwksFetches,
    'the keys came from Google\'s JWKS endpoint')
  t.same(await accountsOf(accepted.json().user.id), [{ providerId: 'google', accountId: user.sub }])
})

/** A verified email+password user with TOTP on (enrolled and confirmed as a user does it), and its code generator. */
async function signUpWithTwoFactor (email: string) {
  const userId = await signUpVerified(email)
  const browser = browserClient(url)
  await browser.post('/api/auth/sign-in/email', { email, password: 'correct horse battery' })
  const enable = await browser.post('/api/auth/two-factor/enable', { password: 'correct horse battery' })
  const totp = OTPAuth.URI.parse(enable.json().totpURI) as OTPAuth.TOTP
  const confirm = await browser.post('/api/auth/two-factor/verify-totp', { code: totp.generate() })
  if (confirm.status !== 200) throw new Error(`verify-totp answered ${confirm.status}: ${confirm.text}`)
  return { userId, totp }
}

// Security review finding 7: whoever controls the mailbox could open a provider account with the address and get
// in with neither password nor code. Every way in asks for the second factor, as password sign-in does.
t.test('social sign-in honours two-factor: the callback asks for the code before any session exists', async (t) => {
  const email = 'totp-social@example.com'
  const { userId, totp } = await signUpWithTwoFactor(email)
  const sessionsBefore = await count('session WHERE "userId" = $1', [userId])
  const metricsBefore = await scrapeMetrics()

  const github = await signInWith('github', {
    id: 1000007, login: 'mallory', name: 'Mallory', email, emails: [{ email, primary: true, verified: true }]
  })
  t.equal(github.result.status, 302)
  const location = new URL(github.result.location ?? '', url)
  t.equal(`${location.origin}${location.pathname}`, `${TRUSTED_ORIGIN}/two-factor`, 'the browser lands on the frontend\'s code page')
  t.equal(location.searchParams.get('callbackURL'), AFTER, 'which knows where the sign-in was going')
  t.notOk(hasSession(github.result.setCookies), 'no session cookie')
  t.equal((await github.browser.get('/api/me')).status, 401, 'the provider alone gives no session')
  t.equal(await count('session WHERE "userId" = $1', [userId]), sessionsBefore, 'and no session row')
  t.ok(github.result.setCookies.some((cookie) => /^better-auth\.two_factor=[^;]/.test(cookie)), 'the pending sign-in is in the two_factor cookie')

  const wrong = await github.browser.post('/api/auth/two-factor/verify-totp', { code: totp.generate({ timestamp: Date.now() - 3_600_000 }) })
  t.equal(wrong.status, 401, 'a wrong code is refused')
  // Each code works once, and enrolling spent the current one: the next period's is accepted too.
  const verified = await github.browser.post('/api/auth/two-factor/verify-totp', { code: totp.generate({ timestamp: Date.now() + 30_000 }) })
  t.equal(verified.status, 200, verified.text)
  t.equal((await github.browser.get('/api/me')).json().user.id, userId, 'the code completes the sign-in')

  const events = await query(databaseUrl,
    'SELECT type, detail->>\'method\' AS method FROM audit_event WHERE "userId" = $1 AND type LIKE \'sign_in.%\' ORDER BY "createdAt", id', [userId])
  t.match(events.rows.slice(-3), [
    { type: 'sign_in.second_factor_required', method: 'github' },
    { type: 'sign_in.failed', method: 'two_factor' },
    { type: 'sign_in.succeeded', method: 'two_factor' }
  ], 'audited as a two-step sign-in')

  // Google's ID-token sign-in answers JSON: the same answer as a password sign-in with a second factor due.
  const idToken = await browserClient(url).post('/api/auth/sign-in/social', {
    provider: 'google', idToken: { token: providers.googleIdToken({ sub: '700000000000000000007', email, email_verified: true, name: 'Mallory' }) }
  })
  t.equal(idToken.status, 200, idToken.text)
  t.same(idToken.json(), { twoFactorRedirect: true, twoFactorMethods: ['totp'] }, 'no user, no token')
  t.notOk(hasSession(idToken.headers.getSetCookie()), 'no session cookie')
  t.equal(await count('session WHERE "userId" = $1', [userId]), sessionsBefore + 1, 'only the session the code opened')
  const social = async (outcome: string) => moved(metricsBefore, await scrapeMetrics(), 'pond_auth_sign_ins_total', { method: 'social', outcome })
  t.equal(await social('two_factor_required'), 2, 'metrics: both wait for a code')
  t.equal(await social('succeeded'), 0, 'and neither counts as a social sign-in')
})

t.test('client secrets and provider tokens stay out of the logs', async (t) => {
  const logs = rawLogs()
  t.ok(logs.length > 0)
  const issued = providers.tokenRequests()
    .map((request) => (request.answer as { access_token?: string, id_token?: string }))
    .flatMap((answer) => [answer.access_token, answer.id_token])
    .filter((value): value is string => value !== undefined)
  t.ok(issued.length >= 2)
  for (const secret of [GITHUB_APP.clientSecret, GOOGLE_APP.clientSecret, ...issued]) {
    t.notOk(logs.includes(secret), `not logged: ${secret.slice(0, 8)}…`)
  }
})
