// Account security end to end through real HTTP: session management, two-factor (TOTP and backup codes), the admin
// role (granted with the real `pnpm user:admin` script) and the schema the twoFactor and admin plugins add.
import { betterAuth } from 'better-auth'
import { getMigrations } from 'better-auth/db/migration'
import * as OTPAuth from 'otpauth'
import pg from 'pg'
import t, { type Test } from 'tap'
import { migrate } from '../src/auth/migrations.js'
import { buildTestApp, freePort, TEST_SECRET } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { createTestDatabase, query } from './helpers/database.js'
import { metricsScraper, moved, type Sample } from './helpers/metrics.js'
import { runCommand } from './helpers/process.js'

// Distinctive, with a space, so the otpauth URI shows that APP_NAME (not Better Auth's default) is the issuer.
const APP_NAME = 'Pond Security QA'
const PASSWORD = 'correct horse battery'
// Metrics on: the two-factor sign-in is also counted (src/plugins/metrics.ts).
const { app, url, databaseUrl } = await buildTestApp(t, { listen: true, env: { APP_NAME, METRICS_PORT: String(await freePort()) } })
const scrapeMetrics = await metricsScraper(app)
/** How each sign-in counter moved between two scrapes. */
const signInsMoved = (before: Sample[], after: Sample[]) => Object.fromEntries(
  [['email', 'failed'], ['email', 'two_factor_required'], ['two_factor', 'failed'], ['two_factor', 'succeeded']].map(([method, outcome]) =>
    [`${method} ${outcome}`, moved(before, after, 'pond_auth_sign_ins_total', { method: method!, outcome: outcome! })]))

type Client = ReturnType<typeof browserClient>
type Response = Awaited<ReturnType<Client['get']>>

/** Asserts the status; the body is shown only when it fails (it can hold tokens). */
const statusIs = (t: Test, response: Response, status: number, message = `HTTP ${status}`) =>
  t.equal(response.status, status, message, { body: response.text })

/** Signs up a new user in a new browser; returns the browser (signed in) and the user. */
async function signUp (email: string, name = email.split('@')[0]!) {
  const browser = browserClient(url)
  const response = await browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name })
  if (response.status !== 200) throw new Error(`sign-up ${email}: ${response.status} ${response.text}`)
  return { browser, user: response.json().user as { id: string, email: string } }
}

/** Signs in from a new browser. */
async function signIn (email: string, password = PASSWORD) {
  const browser = browserClient(url)
  const response = await browser.post('/api/auth/sign-in/email', { email, password })
  return { browser, response }
}

const meStatus = async (browser: Client) => (await browser.get('/api/me')).status
const sessionCookie = async (browser: Client) =>
  (await browser.cookies()).find((cookie) => cookie.key === 'better-auth.session_token')
const sessionCount = async (userId: string) =>
  (await query(databaseUrl, 'SELECT count(*)::int AS n FROM session WHERE "userId" = $1', [userId])).rows[0].n as number
const userRow = async (userId: string) =>
  (await query(databaseUrl, 'SELECT * FROM "user" WHERE id = $1', [userId])).rows[0]

t.test('sessions: list, revoke one, revoke the others; another user cannot revoke yours', async (t) => {
  const ada = await signUp('ada@example.com')
  const laptop = ada.browser
  const phone = await signIn('ada@example.com')
  const tablet = await signIn('ada@example.com')
  statusIs(t, phone.response, 200)
  statusIs(t, tablet.response, 200)
  const mallory = await signUp('mallory@example.com')

  t.equal((await browserClient(url).get('/api/auth/list-sessions')).status, 401, 'listing needs a session')

  const listed = await laptop.get('/api/auth/list-sessions')
  statusIs(t, listed, 200)
  const sessions = listed.json() as Array<Record<string, unknown>>
  t.equal(sessions.length, 3, 'the sign-up session and two sign-ins')
  t.ok(sessions.every((session) => session.userId === ada.user.id), 'only her own sessions')
  // What Better Auth returns per session, recorded so a change shows up here. It includes each session's token
  // (the value revoke-session takes): any script on the frontend origin can read every session token of the user.
  t.same(Object.keys(sessions[0]!).sort(),
    ['createdAt', 'expiresAt', 'id', 'impersonatedBy', 'ipAddress', 'token', 'updatedAt', 'userAgent', 'userId'])
  t.ok(sessions.every((session) => session.ipAddress === '127.0.0.1'), 'the address comes from the socket')
  const phoneToken = phone.response.json().token as string
  const tabletToken = tablet.response.json().token as string
  const laptopCookie = decodeURIComponent((await sessionCookie(laptop))!.value)
  const laptopToken = laptopCookie.slice(0, laptopCookie.indexOf('.'))
  t.same(sessions.map((session) => session.token).sort(), [laptopToken, phoneToken, tabletToken].sort(),
    'the listed tokens are the three browsers\' sessions')

  // Mallory knows (say, from a leak) the phone's token: Better Auth answers the same 200, and nothing happens.
  const foreign = await mallory.browser.post('/api/auth/revoke-session', { token: phoneToken })
  statusIs(t, foreign, 200)
  t.same(foreign.json(), { status: true }, 'the answer does not reveal whether the token exists')
  t.equal(await meStatus(phone.browser), 200, 'the phone is still signed in')
  t.equal(await sessionCount(ada.user.id), 3)
  const foreignOthers = await mallory.browser.post('/api/auth/revoke-other-sessions')
  t.equal(foreignOthers.status, 200)
  t.equal(await sessionCount(ada.user.id), 3, 'her revoke-other-sessions touches only her own sessions')

  const anonymous = await browserClient(url).post('/api/auth/revoke-session', { token: phoneToken })
  t.equal(anonymous.status, 401, 'revoking needs a session')
  t.equal(await meStatus(phone.browser), 200)

  const revoke = await laptop.post('/api/auth/revoke-session', { token: phoneToken })
  statusIs(t, revoke, 200)
  t.same(revoke.json(), { status: true })
  t.equal(await meStatus(phone.browser), 401, 'the revoked browser is signed out at once')
  t.equal(await meStatus(tablet.browser), 200)
  t.equal(await meStatus(laptop), 200)
  t.same((await laptop.get('/api/auth/list-sessions')).json().map((s: { token: string }) => s.token).sort(),
    [laptopToken, tabletToken].sort())

  const others = await laptop.post('/api/auth/revoke-other-sessions')
  statusIs(t, others, 200)
  t.same(others.json(), { status: true })
  t.equal(await meStatus(tablet.browser), 401, 'the other browser is signed out')
  t.equal(await meStatus(laptop), 200, 'the current browser stays signed in')
  t.same((await laptop.get('/api/auth/list-sessions')).json().map((s: { token: string }) => s.token), [laptopToken])
  t.equal(await sessionCount(ada.user.id), 1)
  t.equal(await meStatus(mallory.browser), 200, 'other users are untouched')

  // list-sessions wants a "fresh" session: signed in less than session.freshAge (default 1 day) ago, however active.
  await query(databaseUrl, `UPDATE session SET "createdAt" = now() - interval '25 hours' WHERE token = $1`, [laptopToken])
  const stale = await laptop.get('/api/auth/list-sessions')
  statusIs(t, stale, 403, 'a session signed in over a day ago cannot list sessions')
  t.equal(stale.json().code, 'SESSION_NOT_FRESH')
  t.equal(await meStatus(laptop), 200, 'it is still a valid session')
  statusIs(t, await laptop.post('/api/auth/revoke-other-sessions'), 200, 'revoking needs no fresh session')
  const fresh = await signIn('ada@example.com')
  statusIs(t, await fresh.browser.get('/api/auth/list-sessions'), 200, 'signing in again gives a fresh session')
})

t.test('two-factor: enrol with a real TOTP app, sign in in two steps, backup codes, disable', async (t) => {
  const email = 'grace@example.com'
  const { browser, user } = await signUp(email)

  const badPassword = await browser.post('/api/auth/two-factor/enable', { password: 'not my password' })
  t.equal(badPassword.status, 400)
  t.equal(badPassword.json().code, 'INVALID_PASSWORD')
  t.equal((await browserClient(url).post('/api/auth/two-factor/enable', { password: PASSWORD })).status, 401)

  const enable = await browser.post('/api/auth/two-factor/enable', { password: PASSWORD })
  statusIs(t, enable, 200)
  const { method, totpURI, backupCodes } = enable.json() as { method: string, totpURI: string, backupCodes: string[] }
  t.equal(method, 'totp')
  t.equal(backupCodes.length, 10)
  t.ok(backupCodes.every((code) => /^[A-Za-z0-9]{5}-[A-Za-z0-9]{5}$/.test(code)), 'backup codes look like abcde-12345')
  t.equal(new Set(backupCodes).size, 10)

  // Parsed as an authenticator app does it (the otpauth package).
  const totp = OTPAuth.URI.parse(totpURI)
  if (!(totp instanceof OTPAuth.TOTP)) throw new Error(`not a TOTP URI: ${totpURI}`)
  t.equal(totp.label, email)
  t.equal(totp.digits, 6)
  t.equal(totp.period, 30)
  t.equal(totp.algorithm, 'SHA1')
  t.match(totpURI, /^otpauth:\/\/totp\/Pond%20Security%20QA:grace%40example\.com\?secret=[A-Z2-7]+&issuer=/,
    'the label is "APP_NAME:email", spaces as %20')
  t.equal(new URL(totpURI).searchParams.get('issuer'), APP_NAME, 'issuer= is APP_NAME, read as a form value')
  // Better Auth builds the query with URLSearchParams (a space becomes "+"); the Key URI Format wants RFC 3986 (%20),
  // else Google Authenticator and others show "Pond+Security+QA" (src/auth/totp.ts rewrites it).
  t.equal(totp.issuer, APP_NAME, 'issuer= is APP_NAME as an authenticator app decodes it (RFC 3986)')

  // The page can show the QR code again later (get-totp-uri takes the issuer from appName: same URI).
  const uriAgain = await browser.post('/api/auth/two-factor/get-totp-uri', { password: PASSWORD })
  statusIs(t, uriAgain, 200)
  t.same(uriAgain.json(), { totpURI }, 'get-totp-uri gives the same URI, issuer included')

  // A code from an authenticator app, computed right before it is sent (Better Auth accepts ±1 period).
  const code = () => totp.generate()
  // A well-formed code that is wrong now: not among the codes of the accepted window.
  const wrongCode = () => {
    const accepted = new Set([-1, 0, 1].map((step) => totp.generate({ timestamp: Date.now() + step * 30_000 })))
    return ['000000', '111111', '222222'].find((candidate) => !accepted.has(candidate))!
  }

  t.equal((await userRow(user.id)).twoFactorEnabled, false, 'enable alone does not turn it on')
  t.equal((await query(databaseUrl, 'SELECT verified FROM "twoFactor" WHERE "userId" = $1', [user.id])).rows[0].verified, false)
  const beforeVerifying = await signIn(email)
  t.equal(beforeVerifying.response.status, 200)
  t.notOk(beforeVerifying.response.json().twoFactorRedirect, 'an unconfirmed enrolment leaves sign-in one step')

  const wrongEnrol = await browser.post('/api/auth/two-factor/verify-totp', { code: wrongCode() })
  t.equal(wrongEnrol.status, 401)
  t.equal(wrongEnrol.json().code, 'INVALID_CODE')
  t.equal((await userRow(user.id)).twoFactorEnabled, false)

  const confirm = await browser.post('/api/auth/two-factor/verify-totp', { code: code() })
  statusIs(t, confirm, 200)
  t.equal((await userRow(user.id)).twoFactorEnabled, true, 'user.twoFactorEnabled in the database')
  t.equal((await query(databaseUrl, 'SELECT verified FROM "twoFactor" WHERE "userId" = $1', [user.id])).rows[0].verified, true)
  const me = await browser.get('/api/me')
  t.equal(me.status, 200, 'the enrolling browser stays signed in (its session was replaced)')
  t.equal(me.json().user.twoFactorEnabled, true)

  // Sign-in is now two steps.
  const sessionsBefore = await sessionCount(user.id)
  const metricsBefore = await scrapeMetrics()
  const wrongPassword = await signIn(email, 'not my password')
  t.equal(wrongPassword.response.status, 401)
  t.equal(wrongPassword.response.json().code, 'INVALID_EMAIL_OR_PASSWORD', 'a wrong password says nothing about 2FA')

  const step1 = await signIn(email)
  statusIs(t, step1.response, 200)
  t.same(step1.response.json(), { twoFactorRedirect: true, twoFactorMethods: ['totp'] }, 'no user, no token')
  t.equal(await sessionCookie(step1.browser), undefined, 'no session cookie after the password alone')
  t.ok((await step1.browser.cookies()).some((cookie) => cookie.key === 'better-auth.two_factor' && cookie.httpOnly),
    'an HttpOnly two_factor cookie carries the pending sign-in')
  t.equal(await meStatus(step1.browser), 401, 'the password alone gives no session')
  t.equal(await sessionCount(user.id), sessionsBefore, 'no session row either')

  const wrong = await step1.browser.post('/api/auth/two-factor/verify-totp', { code: wrongCode() })
  t.equal(wrong.status, 401)
  t.equal(wrong.json().code, 'INVALID_CODE')
  t.equal(await meStatus(step1.browser), 401)

  const noChallenge = await browserClient(url).post('/api/auth/two-factor/verify-totp', { code: code() })
  t.equal(noChallenge.status, 401, 'a code without the password step is refused')
  t.equal(noChallenge.json().code, 'INVALID_TWO_FACTOR_COOKIE')

  // The enrolment spent the current period's code (each is used once): the next one's is accepted too.
  const step2Code = totp.generate({ timestamp: Date.now() + 30_000 })
  const step2 = await step1.browser.post('/api/auth/two-factor/verify-totp', { code: step2Code })
  statusIs(t, step2, 200)
  t.equal(step2.json().user.email, email)
  t.equal(await meStatus(step1.browser), 200, 'signed in after the code')
  t.ok(await sessionCookie(step1.browser))
  t.equal(await sessionCount(user.id), sessionsBefore + 1)
  t.same(signInsMoved(metricsBefore, await scrapeMetrics()), {
    'email failed': 1, 'email two_factor_required': 1, 'two_factor failed': 1, 'two_factor succeeded': 1
  }, 'metrics: the wrong password, the password step, the wrong code and the right one (a code with no challenge is no sign-in)')

  // RFC 6238 §5.2: a verifier accepts a code only once (src/auth/totp.ts); Better Auth alone would take a code seen
  // in the last ~90 s again.
  const replay = await signIn(email)
  const replayed = await replay.browser.post('/api/auth/two-factor/verify-totp', { code: step2Code })
  t.equal(replayed.status, 401, 'a TOTP code that already signed someone in is refused')
  t.equal(replayed.json().code, 'INVALID_CODE', 'with the answer of a wrong code')

  // A backup code replaces the TOTP code, once.
  const [firstBackup, secondBackup] = backupCodes
  const metricsBeforeBackup = await scrapeMetrics()
  const lostPhone = await signIn(email)
  t.equal(lostPhone.response.json().twoFactorRedirect, true)
  const useBackup = await lostPhone.browser.post('/api/auth/two-factor/verify-backup-code', { code: firstBackup })
  statusIs(t, useBackup, 200)
  t.equal(await meStatus(lostPhone.browser), 200, 'a backup code completes the sign-in')

  const again = await signIn(email)
  t.equal(again.response.json().twoFactorRedirect, true)
  const reuse = await again.browser.post('/api/auth/two-factor/verify-backup-code', { code: firstBackup })
  t.equal(reuse.status, 401, 'a used backup code is refused')
  t.equal(reuse.json().code, 'INVALID_BACKUP_CODE')
  t.equal(await meStatus(again.browser), 401)
  const next = await again.browser.post('/api/auth/two-factor/verify-backup-code', { code: secondBackup })
  t.equal(next.status, 200, 'the other codes still work, after a failed attempt on the same challenge')
  t.equal(await meStatus(again.browser), 200)
  t.same(signInsMoved(metricsBeforeBackup, await scrapeMetrics()), {
    'email failed': 0, 'email two_factor_required': 2, 'two_factor failed': 1, 'two_factor succeeded': 2
  }, 'metrics: backup codes count as second steps too')

  // Disable: needs the password; sign-in is one step again.
  const badDisable = await browser.post('/api/auth/two-factor/disable', { password: 'not my password' })
  t.equal(badDisable.status, 400)
  t.equal(badDisable.json().code, 'INVALID_PASSWORD')
  t.equal((await userRow(user.id)).twoFactorEnabled, true)
  const disable = await browser.post('/api/auth/two-factor/disable', { password: PASSWORD })
  statusIs(t, disable, 200)
  t.same(disable.json(), { status: true })
  t.equal((await userRow(user.id)).twoFactorEnabled, false)
  t.equal((await query(databaseUrl, 'SELECT count(*)::int AS n FROM "twoFactor" WHERE "userId" = $1', [user.id])).rows[0].n, 0,
    'the secret and backup codes are deleted')
  t.equal(await meStatus(browser), 200, 'the disabling browser stays signed in')

  const oneStep = await signIn(email)
  t.equal(oneStep.response.status, 200)
  t.equal(oneStep.response.json().user.email, email)
  t.notOk(oneStep.response.json().twoFactorRedirect)
  t.equal(await meStatus(oneStep.browser), 200)
})

t.test('a TOTP code is used once: on every machine, and when two sign-ins race with it', async (t) => {
  const email = 'race@example.com'
  const { user } = await signUp(email)
  const enrolment = await (await signIn(email)).browser.post('/api/auth/two-factor/enable', { password: PASSWORD })
  const totp = OTPAuth.URI.parse(enrolment.json().totpURI) as OTPAuth.TOTP
  // Turned on without spending a code, so that every code of the window is still unused.
  await query(databaseUrl, 'UPDATE "user" SET "twoFactorEnabled" = true WHERE id = $1', [user.id])
  await query(databaseUrl, 'UPDATE "twoFactor" SET verified = true WHERE "userId" = $1', [user.id])
  const second = await buildTestApp(t, { listen: true, env: { DATABASE_URL: databaseUrl } })
  const pending = async (base: string) => {
    const browser = browserClient(base)
    const response = await browser.post('/api/auth/sign-in/email', { email, password: PASSWORD })
    t.equal(response.json().twoFactorRedirect, true)
    return browser
  }

  const code = totp.generate()
  const racers = [await pending(url), await pending(url), await pending(second.url), await pending(second.url)]
  const answers = await Promise.all(racers.map((browser) => browser.post('/api/auth/two-factor/verify-totp', { code })))
  t.same(answers.map((answer) => answer.status).sort(), [200, 401, 401, 401], 'one of four racing sign-ins, on two machines, gets in')
  const later = await (await pending(second.url)).post('/api/auth/two-factor/verify-totp', { code })
  t.equal(later.status, 401, 'and the code stays used on the other machine')

  // A wrong code spends nothing: the next period's code works (Better Auth accepts ±1 period).
  const next = totp.generate({ timestamp: Date.now() + 30_000 })
  const browser = await pending(second.url)
  t.equal((await browser.post('/api/auth/two-factor/verify-totp', { code: next === '123456' ? '654321' : '123456' })).status, 401)
  t.equal((await browser.post('/api/auth/two-factor/verify-totp', { code: next })).status, 200, 'an unused code works after a wrong one')
})

t.test('admin: granted with pnpm user:admin; lists, bans and unbans users; others get 403', async (t) => {
  // Development configuration: DATABASE_URL is all it needs (the secret only keeps it from writing .data/auth-secret).
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: TEST_SECRET }
  const userAdmin = (...args: string[]) => runCommand([process.execPath, '--import', 'tsx', 'scripts/user-admin.ts', ...args], { env })
  const root = await signUp('root@example.com')
  const eve = await signUp('eve@example.com')
  // Someone else's roles (Better Auth's admin plugin stores them comma-separated); the grant must keep them.
  const ops = await signUp('ops@example.com')
  await query(databaseUrl, 'UPDATE "user" SET role = \'user,editor\' WHERE id = $1', [ops.user.id])

  // Before the role: a signed-in user is forbidden, not unauthenticated.
  const listAsUser = await root.browser.get('/api/auth/admin/list-users')
  statusIs(t, listAsUser, 403)
  t.equal(listAsUser.json().code, 'YOU_ARE_NOT_ALLOWED_TO_LIST_USERS')
  const banAsUser = await root.browser.post('/api/auth/admin/ban-user', { userId: eve.user.id, banReason: 'no' })
  statusIs(t, banAsUser, 403)
  t.equal(banAsUser.json().code, 'YOU_ARE_NOT_ALLOWED_TO_BAN_USERS')
  t.equal(await meStatus(eve.browser), 200)
  t.equal((await browserClient(url).get('/api/auth/admin/list-users')).status, 401, 'anonymous: 401')

  // Independent runs at once (each loads the whole app through tsx: about 2 s of CPU). The unverified one runs as
  // the README documents it, `pnpm user:admin <email>`: anyone can sign up with the address the operator is about
  // to promote, so an address nobody has proven to own must not become an admin.
  const [usage, unknownFlag, unknown, unverified] = await Promise.all([
    userAdmin(), userAdmin('--force', 'root@example.com'), userAdmin('nobody@example.com'),
    runCommand(['pnpm', 'user:admin', 'root@example.com'], { env })
  ])
  const USAGE = 'Usage: pnpm user:admin [--allow-unverified] <email>\n'
  t.equal(usage.code, 1)
  t.equal(usage.stderr, USAGE)
  t.equal(usage.stdout, '')
  t.equal(unknownFlag.code, 1)
  t.equal(unknownFlag.stderr, USAGE, 'an unknown option is a usage error, not a stack trace')
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr, 'No user with the email nobody@example.com: sign up first, then run this again.\n')
  t.equal(unknown.stdout, '')
  t.not(unverified.code, 0, 'an unverified address is refused')
  t.match(unverified.stderr, /^root@example\.com has not verified its email address, so whoever signed up with it would become admin: verify it first, or pass --allow-unverified if you know who did\.$/m)
  t.notMatch(unverified.stdout, /is now an admin/, 'nothing says it was granted')
  t.equal((await userRow(root.user.id)).role, 'user', 'the role is unchanged')

  // The owner proves the address (the emailed link is tested in email-flows); the grant then goes through.
  await query(databaseUrl, 'UPDATE "user" SET "emailVerified" = true WHERE id = $1', [root.user.id])
  const [grant, grantUnverified] = await Promise.all([
    userAdmin(' Root@Example.com '), userAdmin('--allow-unverified', 'ops@example.com')
  ])
  t.equal(grant.code, 0, 'exit 0', { stderr: grant.stderr })
  t.equal(grant.stdout, 'root@example.com is now an admin.\n', 'the address is trimmed and lower-cased')
  t.equal(grant.stderr, '')
  t.equal((await userRow(root.user.id)).role, 'user,admin', 'admin is added to the roles it had')
  t.equal(grantUnverified.code, 0, 'exit 0 with --allow-unverified', { stderr: grantUnverified.stderr })
  t.equal(grantUnverified.stdout, 'ops@example.com is now an admin (its email address is not verified).\n')
  t.equal((await userRow(ops.user.id)).role, 'user,editor,admin', 'the other roles are kept')
  const twice = await userAdmin('root@example.com')
  t.equal(twice.code, 0, 'exit 0', { stderr: twice.stderr })
  t.equal(twice.stdout, 'root@example.com is already an admin.\n')
  t.equal((await userRow(root.user.id)).role, 'user,admin', 'not added twice')

  // The running session picks the role up (the admin routes read the user from the database), no new sign-in.
  const list = await root.browser.get('/api/auth/admin/list-users')
  statusIs(t, list, 200)
  const { users, total } = list.json() as { users: Array<Record<string, unknown>>, total: number }
  const userCount = (await query(databaseUrl, 'SELECT count(*)::int AS n FROM "user"')).rows[0].n
  t.equal(total, userCount)
  t.equal(users.length, userCount)
  t.match(users.find((user) => user.id === eve.user.id), { email: 'eve@example.com', role: 'user', banned: false })
  t.match(users.find((user) => user.id === root.user.id), { role: 'user,admin' })
  t.notOk(users.some((user) => 'password' in user), 'no password hashes')
  const search = await root.browser.get('/api/auth/admin/list-users?searchValue=eve&limit=5')
  t.same(search.json().users.map((user: { email: string }) => user.email), ['eve@example.com'])

  const banSelf = await root.browser.post('/api/auth/admin/ban-user', { userId: root.user.id })
  t.equal(banSelf.status, 400)
  t.equal(banSelf.json().code, 'YOU_CANNOT_BAN_YOURSELF')

  const eveElsewhere = await signIn('eve@example.com')
  t.equal(await meStatus(eveElsewhere.browser), 200)
  const ban = await root.browser.post('/api/auth/admin/ban-user', { userId: eve.user.id, banReason: 'spam' })
  statusIs(t, ban, 200)
  t.match(ban.json().user, { id: eve.user.id, banned: true, banReason: 'spam', banExpires: null })
  t.equal(await meStatus(eve.browser), 401, 'the banned user\'s sessions end at once')
  t.equal(await meStatus(eveElsewhere.browser), 401, 'all of them')
  t.equal(await sessionCount(eve.user.id), 0)

  const bannedSignIn = await signIn('eve@example.com')
  statusIs(t, bannedSignIn.response, 403)
  t.equal(bannedSignIn.response.json().code, 'BANNED_USER')
  t.equal(await sessionCookie(bannedSignIn.browser), undefined)
  t.equal(await sessionCount(eve.user.id), 0)
  const bannedWrongPassword = await signIn('eve@example.com', 'not her password')
  t.equal(bannedWrongPassword.response.status, 401, 'the ban is only revealed to someone with the password')

  const unban = await root.browser.post('/api/auth/admin/unban-user', { userId: eve.user.id })
  statusIs(t, unban, 200)
  t.match(unban.json().user, { id: eve.user.id, banned: false, banReason: null })
  const back = await signIn('eve@example.com')
  statusIs(t, back.response, 200)
  t.equal(await meStatus(back.browser), 200)

  // A non-admin, even with a fresh session, gets 403 from the admin routes and changes nothing.
  const eveList = await back.browser.get('/api/auth/admin/list-users')
  t.equal(eveList.status, 403)
  t.equal(eveList.json().code, 'YOU_ARE_NOT_ALLOWED_TO_LIST_USERS')
  const eveBan = await back.browser.post('/api/auth/admin/ban-user', { userId: root.user.id, banReason: 'revenge' })
  t.equal(eveBan.status, 403)
  t.equal(eveBan.json().code, 'YOU_ARE_NOT_ALLOWED_TO_BAN_USERS')
  const eveUnban = await back.browser.post('/api/auth/admin/unban-user', { userId: eve.user.id })
  t.equal(eveUnban.status, 403)
  t.equal((await userRow(root.user.id)).banned, false)
  t.equal(await meStatus(root.browser), 200)
})

t.test('schema: the plugins\' table and columns; a database migrated without them is not ready', async (t) => {
  const columns = async (dbUrl: string, table: string) => (await query(dbUrl,
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
    [table])).rows.map((row) => row.column_name as string).sort()

  t.same(await columns(databaseUrl, 'twoFactor'),
    ['backupCodes', 'failedVerificationCount', 'id', 'lockedUntil', 'secret', 'userId', 'verified'])
  const userColumns = await columns(databaseUrl, 'user')
  for (const name of ['twoFactorEnabled', 'role', 'banned', 'banReason', 'banExpires']) {
    t.ok(userColumns.includes(name), `user.${name}`)
  }
  t.ok((await columns(databaseUrl, 'session')).includes('impersonatedBy'), 'session.impersonatedBy')

  // A database from before the plugins: Better Auth's base tables only, with a user in it.
  const oldUrl = await createTestDatabase(t)
  const pool = new pg.Pool({ connectionString: oldUrl })
  try {
    const base = betterAuth({
      database: pool,
      secret: TEST_SECRET,
      baseURL: 'http://localhost:3000',
      emailAndPassword: { enabled: true },
      telemetry: { enabled: false },
      logger: { disabled: true }
    })
    await (await getMigrations(base.options)).runMigrations()
    await base.api.signUpEmail({ body: { email: 'early@example.com', password: PASSWORD, name: 'Early' } })
  } finally {
    await pool.end()
  }
  t.same(await columns(oldUrl, 'twoFactor'), [])
  t.notOk((await columns(oldUrl, 'user')).includes('role'))

  const { app, url: oldAppUrl } = await buildTestApp(t, { migrate: false, listen: true, env: { DATABASE_URL: oldUrl } })
  const pending = await fetch(new URL('/health/ready', oldAppUrl))
  t.equal(pending.status, 503)
  const body = await pending.json()
  t.equal(body.reason, 'migrations pending: run pnpm migrate')
  t.same([...body.pending].sort(), [
    'columns of "session": impersonatedBy',
    'columns of "user": twoFactorEnabled, role, banned, banReason, banExpires',
    'index audit_event_created_idx on "audit_event"',
    'index audit_event_type_created_idx on "audit_event"',
    'index audit_event_user_created_idx on "audit_event"',
    'index totp_used_code_expires_idx on "totp_used_code"',
    'table "audit_event"',
    'table "rateLimit"',
    'table "totp_used_code"',
    'table "twoFactor"'
  ])

  // What `pnpm migrate` does on deploy: the existing user keeps working and is neither admin nor 2FA.
  const { applied } = await migrate(app.auth, app.pg)
  t.same([...applied].sort(), [...body.pending].sort())
  t.equal((await fetch(new URL('/health/ready', oldAppUrl))).status, 200)
  const early = browserClient(oldAppUrl)
  const signedIn = await early.post('/api/auth/sign-in/email', { email: 'early@example.com', password: PASSWORD })
  statusIs(t, signedIn, 200)
  t.notOk(signedIn.json().twoFactorRedirect)
  t.equal((await early.get('/api/me')).status, 200)
  t.equal((await early.get('/api/auth/admin/list-users')).status, 403, 'a user from before the admin plugin is no admin')
})
