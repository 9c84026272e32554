// Rotating BETTER_AUTH_SECRET with versioned secrets (BETTER_AUTH_SECRETS), through real HTTP. The machines before,
// during and after a rotation are separate app instances on ONE database, and one browser (cookie jar) visits them
// all: cookies are per host, not per port.
//   before:  BETTER_AUTH_SECRET=old
//   step 1:  BETTER_AUTH_SECRET=old  BETTER_AUTH_SECRETS=2:new,1:old
//   step 2:  BETTER_AUTH_SECRET=old  BETTER_AUTH_SECRETS=2:new            (once every old-signed cookie has expired)
import { createHmac, randomBytes } from 'node:crypto'
import * as OTPAuth from 'otpauth'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { buildTestApp, type TestApp } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'

const OLD = randomBytes(32).toString('base64')
const NEW = randomBytes(32).toString('base64')
const PASSWORD = 'correct horse battery'
const SESSION_COOKIE = 'better-auth.session_token'

const before = await buildTestApp(t, { listen: true, env: { BETTER_AUTH_SECRET: OLD } })
const { databaseUrl } = before
/** Another machine of the same deployment: same database, its own secrets. */
const machine = (env: Record<string, string>) => buildTestApp(t, { listen: true, env: { DATABASE_URL: databaseUrl, ...env } })

type Browser = ReturnType<typeof browserClient>
type Response = Awaited<ReturnType<Browser['get']>>
const browser = () => browserClient(before.url)
const at = (app: TestApp, path: string) => `${app.url}${path}`
/**
 * The current code, usable again: this test is about secrets, and its steps sign the same users in within one TOTP
 * period, while each code is accepted only once (test/account-security.test.ts); the record of used codes is cleared.
 */
const freshCode = async (totp: OTPAuth.TOTP) => {
  await query(databaseUrl, 'DELETE FROM totp_used_code')
  return totp.generate()
}

/** Asserts the status; the body is shown only when it fails (it can hold tokens). */
const statusIs = (t: Test, response: Response, status: number, message = `HTTP ${status}`) =>
  t.equal(response.status, status, message, { body: response.text })

/** Which secret signed the browser's session cookie: its value is "<token>.<base64 HMAC-SHA256(token)>", URL-encoded. */
async function signedWith (browser: Browser): Promise<'old' | 'new' | 'neither' | 'no cookie'> {
  const cookie = (await browser.cookies()).find((c) => c.key === SESSION_COOKIE)
  if (cookie === undefined) return 'no cookie'
  const value = decodeURIComponent(cookie.value)
  const token = value.slice(0, value.lastIndexOf('.'))
  const signature = value.slice(value.lastIndexOf('.') + 1)
  if (createHmac('sha256', OLD).update(token).digest('base64') === signature) return 'old'
  if (createHmac('sha256', NEW).update(token).digest('base64') === signature) return 'new'
  return 'neither'
}

const meOn = async (app: TestApp, browser: Browser) => {
  const response = await browser.get(at(app, '/api/me'))
  return { status: response.status, userId: response.status === 200 ? response.json().user.id as string : undefined }
}
const storedTotpSecret = async (userId: string) =>
  (await query(databaseUrl, 'SELECT secret FROM "twoFactor" WHERE "userId" = $1', [userId])).rows[0].secret as string

async function signUp (app: TestApp, email: string) {
  const b = browser()
  const response = await b.post(at(app, '/api/auth/sign-up/email'), { email, password: PASSWORD, name: email.split('@')[0] })
  if (response.status !== 200) throw new Error(`sign-up ${email}: ${response.status} ${response.text}`)
  return { browser: b, userId: response.json().user.id as string }
}

/** Turns two-factor on (enable, then a first code) and returns the authenticator. */
async function enableTwoFactor (app: TestApp, b: Browser): Promise<OTPAuth.TOTP> {
  const enable = await b.post(at(app, '/api/auth/two-factor/enable'), { password: PASSWORD })
  if (enable.status !== 200) throw new Error(`two-factor/enable: ${enable.status} ${enable.text}`)
  const totp = OTPAuth.URI.parse(enable.json().totpURI)
  if (!(totp instanceof OTPAuth.TOTP)) throw new Error('not a TOTP URI')
  const confirm = await b.post(at(app, '/api/auth/two-factor/verify-totp'), { code: await freshCode(totp) })
  if (confirm.status !== 200) throw new Error(`two-factor/verify-totp: ${confirm.status} ${confirm.text}`)
  return totp
}

/** The password step of a sign-in, from a new browser. */
async function startSignIn (app: TestApp, email: string) {
  const b = browser()
  const response = await b.post(at(app, '/api/auth/sign-in/email'), { email, password: PASSWORD })
  return { browser: b, response }
}

// The machines of each step, all started now: tap ends the file's root test (and drops the database) when it has no
// subtest left to run, so nothing may be awaited between subtests. What matters is the order of the requests.
const step1 = await machine({ BETTER_AUTH_SECRET: OLD, BETTER_AUTH_SECRETS: `2:${NEW},1:${OLD}` })
const step2 = await machine({ BETTER_AUTH_SECRET: OLD, BETTER_AUTH_SECRETS: `2:${NEW}` })
/** A wrong step 2: BETTER_AUTH_SECRET replaced by the new secret too. */
const wrong = await machine({ BETTER_AUTH_SECRET: NEW, BETTER_AUTH_SECRETS: `2:${NEW}` })

// Before the rotation: ada (two-factor on) and bob are signed in; ada has a sign-in waiting for its code.
const ada = await signUp(before, 'ada@example.com')
const adaTotp = await enableTwoFactor(before, ada.browser)
const bob = await signUp(before, 'bob@example.com')
const adaPending = await startSignIn(before, 'ada@example.com')

t.test('before: cookies signed with the only secret; the two-factor secret encrypted with it, unversioned', async (t) => {
  t.equal((await meOn(before, ada.browser)).status, 200)
  t.equal(await signedWith(ada.browser), 'old')
  t.equal(await signedWith(bob.browser), 'old')
  t.same(adaPending.response.json(), { twoFactorRedirect: true, twoFactorMethods: ['totp'] })
  t.match(await storedTotpSecret(ada.userId), /^[0-9a-f]+$/, 'bare hex: readable only with BETTER_AUTH_SECRET')
})

let carolTotp: OTPAuth.TOTP | undefined
t.test('step 1 (2:new,1:old): nobody is signed out, and the new secret takes over', async (t) => {
  t.same(await meOn(step1, ada.browser), { status: 200, userId: ada.userId }, 'a session signed with the old secret stays')
  const session = await ada.browser.get(at(step1, '/api/auth/get-session'))
  statusIs(t, session, 200)
  t.equal(session.json()?.user?.id, ada.userId, 'Better Auth\'s own get-session sees it too')

  const pending = await adaPending.browser.post(at(step1, '/api/auth/two-factor/verify-totp'), { code: await freshCode(adaTotp) })
  statusIs(t, pending, 200, 'a sign-in started before step 1 completes with its code after it')
  t.equal(await signedWith(adaPending.browser), 'new', 'and its session is signed with the new secret')

  const signIn = await startSignIn(step1, 'ada@example.com')
  t.same(signIn.response.json(), { twoFactorRedirect: true, twoFactorMethods: ['totp'] })
  const code = await signIn.browser.post(at(step1, '/api/auth/two-factor/verify-totp'), { code: await freshCode(adaTotp) })
  statusIs(t, code, 200, 'two-factor secrets encrypted before the rotation still decrypt')
  t.same(await meOn(step1, signIn.browser), { status: 200, userId: ada.userId })
  t.equal(await signedWith(signIn.browser), 'new', 'new sessions are signed with the new secret')
  t.equal((await meOn(before, signIn.browser)).status, 401, 'which a machine without it does not accept')

  // Better Auth re-sets the cookie (signed with the current secret) when it extends a session, after a day of use.
  const token = decodeURIComponent((await ada.browser.cookies()).find((c) => c.key === SESSION_COOKIE)!.value).split('.')[0]
  await query(databaseUrl, `UPDATE session SET "expiresAt" = now() + interval '5 days' WHERE token = $1`, [token])
  statusIs(t, await ada.browser.get(at(step1, '/api/auth/get-session')), 200)
  t.equal(await signedWith(ada.browser), 'new', 'a refreshed session moves to the new secret')
  t.same(await meOn(step1, ada.browser), { status: 200, userId: ada.userId })

  const carol = await signUp(step1, 'carol@example.com')
  carolTotp = await enableTwoFactor(step1, carol.browser)
  t.match(await storedTotpSecret(carol.userId), /^\$ba\$2\$[0-9a-f]+$/, 'new two-factor secrets are encrypted with version 2')
})

t.test('step 2 (2:new): the old secret signs and verifies nothing; BETTER_AUTH_SECRET still decrypts', async (t) => {
  t.equal(await signedWith(bob.browser), 'old', 'bob has not been back since step 1')
  t.equal((await meOn(step2, bob.browser)).status, 401, 'a cookie signed with the old secret is refused')
  t.same(await meOn(step1, bob.browser), { status: 200, userId: bob.userId }, 'although its session is valid')

  t.same(await meOn(step2, ada.browser), { status: 200, userId: ada.userId }, 'cookies signed with the new secret stay')

  const signIn = await startSignIn(step2, 'ada@example.com')
  const code = await signIn.browser.post(at(step2, '/api/auth/two-factor/verify-totp'), { code: await freshCode(adaTotp) })
  statusIs(t, code, 200, 'a two-factor secret from before the rotation decrypts with BETTER_AUTH_SECRET=old')
  t.equal(await signedWith(signIn.browser), 'new', 'signed with the new secret')
})

t.test('setting BETTER_AUTH_SECRET to the new secret breaks two-factor enrolled before the rotation', async (t) => {
  const ada2 = await startSignIn(wrong, 'ada@example.com')
  t.equal(ada2.response.json().twoFactorRedirect, true, 'the password step passes')
  const code = await ada2.browser.post(at(wrong, '/api/auth/two-factor/verify-totp'), { code: await freshCode(adaTotp) })
  t.equal(code.status, 500, 'the old unversioned ciphertext cannot be read', { body: code.text })
  t.equal(await signedWith(ada2.browser), 'no cookie', 'no session')

  // Carol enrolled during step 1: her secret is encrypted with version 2, which this machine has.
  const carol = await startSignIn(wrong, 'carol@example.com')
  const carolCode = await carol.browser.post(at(wrong, '/api/auth/two-factor/verify-totp'), { code: await freshCode(carolTotp!) })
  statusIs(t, carolCode, 200, 'versioned ciphertext is read with its version\'s secret')
})

t.test('BETTER_AUTH_SECRETS is validated; errors name the variable, never the value', async (t) => {
  const env = (secrets: string) => ({ BETTER_AUTH_SECRET: OLD, BETTER_AUTH_SECRETS: secrets })
  t.same(loadConfig({ env: env(`2:${NEW}, 1:${OLD}`) }).auth.secrets, [{ version: 2, value: NEW }, { version: 1, value: OLD }],
    'parsed in order, current first, spaces trimmed')
  t.equal(loadConfig({ env: { BETTER_AUTH_SECRET: OLD } }).auth.secrets, undefined, 'optional')
  const badValues: Array<[value: string, why: string]> = [
    ['2:too-short-to-sign-anything', 'a secret under 32 characters'],
    [`${NEW}`, 'no version'],
    [`two:${NEW}`, 'a version that is not a whole number'],
    [`2:${NEW},2:${OLD}`, 'a repeated version'],
    [`2:${NEW},`, 'an empty entry'],
    ['1:better-auth-secret-12345678901234567890', 'Better Auth\'s public default']
  ]
  for (const [bad, why] of badValues) {
    let error: unknown
    try {
      loadConfig({ env: env(bad) })
    } catch (caught) {
      error = caught
    }
    t.type(error, ConfigError, why)
    const lines = (error as ConfigError | undefined)?.lines ?? []
    t.equal(lines.length, 1, `${why}: one problem`)
    t.match(lines[0], /^BETTER_AUTH_SECRETS must be "<version>:<secret>,\.\.\." with the current secret first/, `${why}: named`)
    t.notOk(lines.some((line) => line.includes(NEW) || line.includes('too-short')), `${why}: no secret in the message`)
  }
})

t.test('no machine logs either secret', async (t) => {
  for (const [name, app] of Object.entries({ before, step1, step2, wrong })) {
    const logs = app.rawLogs()
    t.ok(logs.length > 0, `${name} logged something`)
    t.notOk(logs.includes(OLD) || logs.includes(NEW), `${name}: no secret in its log`)
  }
})
