// The emailed flows end to end, through real HTTP, a real SMTP server in this process (smtp-server, reached by the
// service's nodemailer) and a real PostgreSQL: email verification, password reset, change password, change email,
// account deletion, what happens when mail cannot be sent, and the console transport of development.
import { createServer, type Socket } from 'node:net'
import * as OTPAuth from 'otpauth'
import t, { type Test } from 'tap'
import { buildTestApp, freePort, TRUSTED_ORIGIN } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'
import { mailEnv, startMailServer, type ReceivedMail } from './helpers/mail-server.js'

type Browser = ReturnType<typeof browserClient>
type LogLine = Record<string, unknown>

// Distinctive, and not ASCII: the subject must survive MIME encoding and decoding.
const APP_NAME = 'Otterbrook Café'
const PASSWORD = 'correct horse battery'
const NEW_PASSWORD = 'a brand new staple 42'

// The service with its default REQUIRE_EMAIL_VERIFICATION (false in development), sending through a real SMTP server.
const mail = await startMailServer(t)
const main = await buildTestApp(t, { listen: true, env: { APP_NAME, ...mailEnv(mail) } })

t.test('email verification', async (t) => {
  t.test('REQUIRE_EMAIL_VERIFICATION=true: no session until the emailed link is followed', async (t) => {
    const mail = await startMailServer(t)
    const { url, databaseUrl } = await buildTestApp(t, {
      listen: true, env: { APP_NAME, REQUIRE_EMAIL_VERIFICATION: 'true', ...mailEnv(mail) }
    })
    const email = 'verify-me@example.com'
    const browser = browserClient(url)

    const signUp = await browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Vera' })
    t.equal(signUp.status, 200, 'sign-up answers', { body: signUp.text })
    t.equal(signUp.json().token, null, 'no session token in the body')
    t.notOk(signUp.headers.getSetCookie().some((c) => c.startsWith('better-auth.session_token=')), 'no session cookie')
    t.equal((await browser.get('/api/me')).status, 401)

    const first = await mail.waitForMail(email, { subject: /confirm your email address/ })
    const firstLink = checkMail(t, first, { to: email, url, path: '/api/auth/verify-email' })
    t.equal(new URL(firstLink).searchParams.get('callbackURL'), `${TRUSTED_ORIGIN}/`, 'the link ends on the frontend')
    t.match(first.text, email, 'the text names the address being confirmed')

    const refused = await browserClient(url).post('/api/auth/sign-in/email', { email, password: PASSWORD })
    t.equal(refused.status, 403, 'sign-in before verifying is refused', { body: refused.text })
    t.equal(refused.json().code, 'EMAIL_NOT_VERIFIED')
    t.notOk(refused.headers.getSetCookie().some((c) => c.startsWith('better-auth.session_token=')))

    const resend = await browserClient(url).post('/api/auth/send-verification-email', { email })
    t.equal(resend.status, 200, 'resend answers', { body: resend.text })
    t.same(resend.json(), { status: true })
    const second = await mail.waitForMail(email, { subject: /confirm your email address/ })
    const link = checkMail(t, second, { to: email, url, path: '/api/auth/verify-email' })

    t.equal(await emailVerified(databaseUrl, email), false, 'not verified before the link is followed')
    // The link opens in a browser that has no session for this account yet.
    const reader = browserClient(url)
    const followed = await reader.get(pathOf(link))
    t.equal(followed.status, 302, 'the link redirects', { body: followed.text })
    t.equal(followed.headers.get('location'), `${TRUSTED_ORIGIN}/`, 'redirected to the frontend')
    t.equal(await emailVerified(databaseUrl, email), true, 'verified in the database')
    const me = await reader.get('/api/me')
    t.equal(me.status, 200, 'following the link signed this browser in')
    t.equal(me.json().user.email, email)
    t.equal(me.json().user.emailVerified, true)

    const signIn = await browserClient(url).post('/api/auth/sign-in/email', { email, password: PASSWORD })
    t.equal(signIn.status, 200, 'sign-in works once verified', { body: signIn.text })
    t.type(signIn.json().token, 'string')
  })

  t.test('development default (REQUIRE_EMAIL_VERIFICATION unset): signed in at once, and the mail still goes out', async (t) => {
    const email = 'eager@example.com'
    const browser = browserClient(main.url)
    const signUp = await browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Eager' })
    t.equal(signUp.status, 200, 'sign-up answers', { body: signUp.text })
    t.type(signUp.json().token, 'string')
    const me = await browser.get('/api/me')
    t.equal(me.status, 200, 'signed in by the sign-up')
    t.equal(me.json().user.emailVerified, false)

    const message = await mail.waitForMail(email, { subject: /confirm your email address/ })
    const link = checkMail(t, message, { to: email, url: main.url, path: '/api/auth/verify-email' })
    const followed = await browser.get(pathOf(link))
    t.equal(followed.status, 302)
    t.equal(followed.headers.get('location'), `${TRUSTED_ORIGIN}/`)
    t.equal(await emailVerified(main.databaseUrl, email), true)
    t.equal((await browser.get('/api/me')).json().user.emailVerified, true, 'the same session, now verified')
  })
})

t.test('password reset', async (t) => {
  const { url, databaseUrl } = main
  const email = 'forgetful@example.com'
  const unknown = 'nobody-here@example.com'
  const before = browserClient(url)
  await signUp(t, before, email)
  await mail.waitForMail(email, { subject: /confirm your email address/ })
  const otherDevice = browserClient(url)
  t.equal((await otherDevice.post('/api/auth/sign-in/email', { email, password: PASSWORD })).status, 200)

  const anonymous = browserClient(url)
  const forUnknown = await anonymous.post('/api/auth/request-password-reset', { email: unknown })
  const forKnown = await anonymous.post('/api/auth/request-password-reset', { email })
  t.equal(forKnown.status, 200, 'reset request for a known address answers', { body: forKnown.text })
  t.equal(forUnknown.status, forKnown.status, 'same status for an unknown address')
  t.same(forUnknown.json(), forKnown.json(), 'same body for an unknown address')
  t.equal(forUnknown.text, forKnown.text)

  const message = await mail.waitForMail(email, { subject: /reset your password/ })
  const link = checkMail(t, message, { to: email, url, path: '/api/auth/reset-password/' })
  const token = new URL(link).pathname.split('/').pop()!
  t.ok(token.length >= 16, 'the link carries a token')

  const landing = await anonymous.get(pathOf(link))
  t.equal(landing.status, 302, 'the link redirects', { body: landing.text })
  const location = new URL(landing.headers.get('location')!)
  t.equal(location.origin, TRUSTED_ORIGIN, 'redirected to the frontend')
  t.equal(location.pathname, '/reset-password')
  t.equal(location.searchParams.get('token'), token, 'with the token for the form')

  // A second request, whose token is then made to expire.
  t.equal((await anonymous.post('/api/auth/request-password-reset', { email })).status, 200)
  const expiring = await mail.waitForMail(email, { subject: /reset your password/ })
  const expiredToken = new URL(expiring.link!).pathname.split('/').pop()!
  t.not(expiredToken, token)
  const expired = await query(databaseUrl,
    `UPDATE verification SET "expiresAt" = now() - interval '1 minute' WHERE identifier = $1`, [`reset-password:${expiredToken}`])
  t.equal(expired.rowCount, 1, 'the token is a verification row')
  const expiredLanding = await anonymous.get(pathOf(expiring.link!))
  t.equal(expiredLanding.status, 302)
  const expiredLocation = new URL(expiredLanding.headers.get('location')!)
  t.equal(expiredLocation.origin, TRUSTED_ORIGIN)
  t.equal(expiredLocation.searchParams.get('error'), 'INVALID_TOKEN')
  t.equal(expiredLocation.searchParams.get('token'), null)
  const expiredReset = await anonymous.post('/api/auth/reset-password', { newPassword: 'not this one 123', token: expiredToken })
  t.equal(expiredReset.status, 400, 'an expired token is refused', { body: expiredReset.text })
  t.equal(expiredReset.json().code, 'INVALID_TOKEN')
  t.equal((await before.get('/api/me')).status, 200, 'a refused reset revokes nothing')

  const reset = await anonymous.post('/api/auth/reset-password', { newPassword: NEW_PASSWORD, token })
  t.equal(reset.status, 200, 'the reset answers', { body: reset.text })
  t.same(reset.json(), { status: true })
  const again = await anonymous.post('/api/auth/reset-password', { newPassword: 'and yet another 99', token })
  t.equal(again.status, 400, 'the token works once')
  t.equal(again.json().code, 'INVALID_TOKEN')

  t.equal((await before.get('/api/me')).status, 401, 'the session from sign-up is revoked')
  t.equal((await otherDevice.get('/api/me')).status, 401, 'the session on the other device is revoked')
  t.equal(await sessionCount(databaseUrl, email), 0)

  const old = await browserClient(url).post('/api/auth/sign-in/email', { email, password: PASSWORD })
  t.equal(old.status, 401, 'the old password is refused')
  t.equal(old.json().code, 'INVALID_EMAIL_OR_PASSWORD')
  const fresh = browserClient(url)
  t.equal((await fresh.post('/api/auth/sign-in/email', { email, password: NEW_PASSWORD })).status, 200, 'the new one works')
  t.equal((await fresh.get('/api/me')).status, 200)

  // By now a message for the unknown address (requested before the known one) would long have arrived.
  t.same(mail.messages.filter((m) => m.to.includes(unknown)), [], 'no mail for an unknown address')
})

t.test('change password with revokeOtherSessions', async (t) => {
  const { url } = main
  const email = 'rotator@example.com'
  const current = browserClient(url)
  await signUp(t, current, email)
  await mail.waitForMail(email, { subject: /confirm your email address/ })
  const other = browserClient(url)
  t.equal((await other.post('/api/auth/sign-in/email', { email, password: PASSWORD })).status, 200)
  t.equal((await other.get('/api/me')).status, 200)

  const wrong = await current.post('/api/auth/change-password', { currentPassword: 'not my password', newPassword: NEW_PASSWORD, revokeOtherSessions: true })
  t.equal(wrong.status, 400, 'the current password is checked')
  t.equal(wrong.json().code, 'INVALID_PASSWORD')
  t.equal((await other.get('/api/me')).status, 200, 'a refused change revokes nothing')

  const changed = await current.post('/api/auth/change-password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, revokeOtherSessions: true })
  t.equal(changed.status, 200, 'change-password answers', { body: changed.text })
  t.equal((await other.get('/api/me')).status, 401, 'the other session is revoked')
  const me = await current.get('/api/me')
  t.equal(me.status, 200, 'the current browser stays signed in')
  t.equal(me.json().user.email, email)
  t.equal(await sessionCount(main.databaseUrl, email), 1, 'one session left: the current one')

  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email, password: PASSWORD })).status, 401, 'old password refused')
  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email, password: NEW_PASSWORD })).status, 200, 'new password works')
})

t.test('change email of a verified user: confirmed from the current address, then verified at the new one', async (t) => {
  const { url, databaseUrl } = main
  const oldEmail = 'mover@example.com'
  const newEmail = 'moved@example.com'
  const browser = browserClient(url)
  await signUp(t, browser, oldEmail)
  const verification = await mail.waitForMail(oldEmail, { subject: /confirm your email address/ })
  t.equal((await browser.get(pathOf(verification.link!))).status, 302)
  t.equal(await emailVerified(databaseUrl, oldEmail), true, 'the user starts verified')

  const change = await browser.post('/api/auth/change-email', { newEmail })
  t.equal(change.status, 200, 'change-email answers', { body: change.text })
  t.same(change.json(), { status: true })

  // First the current address confirms: a stolen session alone cannot move the account.
  const confirmation = await mail.waitForMail(oldEmail, { subject: /confirm changing your email address/ })
  const confirmLink = checkMail(t, confirmation, { to: oldEmail, url, path: '/api/auth/verify-email' })
  t.match(confirmation.text, newEmail, 'the mail names the new address')
  t.same(mail.messages.filter((m) => m.to.includes(newEmail)), [], 'nothing goes to the new address before that')
  t.equal(await userEmail(databaseUrl, oldEmail), oldEmail, 'unchanged after the request')
  const confirmed = await browser.get(pathOf(confirmLink))
  t.equal(confirmed.status, 302, 'the confirmation link redirects', { body: confirmed.text })
  t.equal(await userEmail(databaseUrl, oldEmail), oldEmail, 'still unchanged: the new address has not confirmed yet')

  const message = await mail.waitForMail(newEmail, { subject: /confirm your email address/ })
  const link = checkMail(t, message, { to: newEmail, url, path: '/api/auth/verify-email' })
  t.match(message.text, newEmail, 'the mail asks to confirm the new address')

  t.equal(await userEmail(databaseUrl, oldEmail), oldEmail, 'unchanged until the link is followed')
  t.equal(await userEmail(databaseUrl, newEmail), undefined)
  t.equal((await browser.get('/api/me')).json().user.email, oldEmail)

  const followed = await browser.get(pathOf(link))
  t.equal(followed.status, 302, 'the link redirects', { body: followed.text })
  t.equal(followed.headers.get('location'), `${TRUSTED_ORIGIN}/`, 'redirected to the frontend')
  t.equal(await userEmail(databaseUrl, oldEmail), undefined, 'the old address is gone')
  t.equal(await userEmail(databaseUrl, newEmail), newEmail, 'the user has the new address')
  t.equal(await emailVerified(databaseUrl, newEmail), true, 'and it counts as verified')
  t.equal((await browser.get('/api/me')).json().user.email, newEmail)

  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email: newEmail, password: PASSWORD })).status, 200)
  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email: oldEmail, password: PASSWORD })).status, 401)
})

t.test('delete account: only the emailed confirmation deletes', async (t) => {
  const { url, databaseUrl } = main
  const email = 'leaving@example.com'
  const browser = browserClient(url)
  await signUp(t, browser, email)
  await mail.waitForMail(email, { subject: /confirm your email address/ })
  const userId = (await browser.get('/api/me')).json().user.id as string
  const cookie = await browser.jar.getCookieString(url)

  const asked = await browser.post('/api/auth/delete-user', {})
  t.equal(asked.status, 200, 'delete-user answers', { body: asked.text })
  t.same(asked.json(), { success: true, message: 'Verification email sent' })
  const message = await mail.waitForMail(email, { subject: /confirm deleting your account/ })
  const link = checkMail(t, message, { to: email, url, path: '/api/auth/delete-user/callback' })
  t.equal(new URL(link).searchParams.get('callbackURL'), `${TRUSTED_ORIGIN}/`)

  t.same(await rowsOf(databaseUrl, userId), { user: 1, session: 1, account: 1 }, 'nothing deleted by asking')
  t.equal((await browser.get('/api/me')).status, 200)

  // The link needs the account's own session: opened elsewhere, it deletes nothing.
  const elsewhere = await browserClient(url).get(pathOf(link))
  t.equal(elsewhere.status, 404, 'the link opened without the session: not found', { body: elsewhere.text })
  t.same(await rowsOf(databaseUrl, userId), { user: 1, session: 1, account: 1 }, 'nothing deleted without the session')

  const followed = await browser.get(pathOf(link))
  t.equal(followed.status, 302, 'the link redirects', { body: followed.text })
  t.equal(followed.headers.get('location'), `${TRUSTED_ORIGIN}/`, 'redirected to the frontend')
  t.same(await rowsOf(databaseUrl, userId), { user: 0, session: 0, account: 0 }, 'user, sessions and accounts are gone')

  const stale = await fetch(new URL('/api/me', url), { headers: { cookie } })
  t.equal(stale.status, 401, 'the old session cookie no longer works')
  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email, password: PASSWORD })).status, 401)
})

t.test('mail failures never show in the answer and leave no address or link in the log', async (t) => {
  // What a healthy service answers to a reset request (for an address it does not know, so no mail goes out).
  const normalReset = await browserClient(main.url).post('/api/auth/request-password-reset', { email: 'someone-else@example.com' })
  t.equal(normalReset.status, 200)

  t.test('the SMTP server refuses every message', async (t) => {
    const mail = await startMailServer(t)
    mail.state.rejectMail = true
    const app = await buildTestApp(t, { listen: true, env: { APP_NAME, ...mailEnv(mail) } })
    await answersAsNormal(t, app, 'quill.rejected@example.com', normalReset.text)
    t.same(mail.messages, [], 'nothing was accepted')
  })

  t.test('the SMTP server refuses the recipient and names it in its reply', async (t) => {
    const mail = await startMailServer(t)
    mail.state.rejectRecipients = true
    const app = await buildTestApp(t, { listen: true, env: { APP_NAME, ...mailEnv(mail) } })
    await answersAsNormal(t, app, 'quill.unknown@example.com', normalReset.text)
    t.match(JSON.stringify(app.logs), /Recipient address rejected/, 'the reason is logged')
  })

  t.test('nothing listens at SMTP_URL', async (t) => {
    const closed = `smtp://127.0.0.1:${await freePort()}`
    const app = await buildTestApp(t, { listen: true, env: { APP_NAME, ...mailEnv({ url: closed }) } })
    await answersAsNormal(t, app, 'quill.unreachable@example.com', normalReset.text)
  })

  t.test('an SMTP server that accepts and never answers does not hold up the answers', async (t) => {
    const smtp = await silentServer(t)
    const { url, logs, databaseUrl } = await buildTestApp(t, { listen: true, env: { APP_NAME, ...mailEnv(smtp) } })
    const email = 'quill.patient@example.com'
    const browser = browserClient(url)
    const mailerDone = () => logs.filter((line) => line.msg === 'mail sent' || line.msg === 'mail could not be sent')

    // Were the answer to wait for the mail, it could only come after nodemailer gave up and closed the connection.
    const signUp = await beforeAnyClose(smtp, browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Patient' }))
    t.equal(signUp.status, 200, 'sign-up answers', { body: signUp.text })
    t.equal((await browser.get('/api/me')).status, 200)
    await smtp.connected(1)
    t.equal(smtp.bytesReceived(), 0, 'the mail is still waiting for the server greeting')
    t.same(mailerDone(), [], 'and has neither been sent nor failed')

    const reset = await beforeAnyClose(smtp, browserClient(url).post('/api/auth/request-password-reset', { email }))
    t.equal(reset.status, 200)
    t.equal(reset.text, normalReset.text)
    await smtp.connected(2)
    t.equal(smtp.bytesReceived(), 0)
    t.same(mailerDone(), [], 'both messages are still pending')

    // Hang up: the pending messages fail, and that is logged, without address or link.
    smtp.hangUp()
    const failures = await waitForLogs(logs, 2, (line) => line.msg === 'mail could not be sent')
    t.same(failures.map((line) => (line.mail as { kind: string }).kind).sort(), ['reset-password', 'verify-email'])
    const token = await resetToken(databaseUrl, email)
    t.ok(token, 'the reset token exists (in the database only)')
    for (const line of failures) checkFailureLine(t, line, email, [token])
  })
})

t.test('MAIL_TRANSPORT=console writes the message, link included, to the log', async (t) => {
  t.test('the development default', async (t) => {
    const { url, logs, databaseUrl } = await buildTestApp(t, { listen: true, env: { APP_NAME } })
    t.ok(logs.some((line) => line.msg === 'mail goes to this log (MAIL_TRANSPORT=console)'), 'start-up says where mail goes')
    const email = 'console@example.com'
    await signUp(t, browserClient(url), email)
    const line = await waitForLog(logs, (line) => (line.mail as { to?: string } | undefined)?.to === email)
    t.equal(line.level, 30)
    t.match(line.mail, { kind: 'verify-email', to: email, subject: `${APP_NAME}: confirm your email address` })
    const text = line.msg as string
    t.match(text, /^mail \(console transport\):\n/)
    const link = /https?:\/\/\S+/.exec(text)?.[0]
    t.ok(link?.startsWith(`${url}/api/auth/verify-email?token=`), `the link is in the log: ${link}`)

    const followed = await browserClient(url).get(pathOf(link!))
    t.equal(followed.status, 302, 'the logged link works')
    t.equal(followed.headers.get('location'), `${TRUSTED_ORIGIN}/`)
    t.equal(await emailVerified(databaseUrl, email), true)
  })

  t.test('explicitly, with an SMTP_URL that is then not used', async (t) => {
    const smtp = await silentServer(t)
    const { url, logs } = await buildTestApp(t, { listen: true, env: { APP_NAME, ...mailEnv(smtp), MAIL_TRANSPORT: 'console' } })
    const email = 'console-too@example.com'
    await signUp(t, browserClient(url), email)
    t.equal((await browserClient(url).post('/api/auth/request-password-reset', { email })).status, 200)
    const lines = await waitForLogs(logs, 2, (line) => (line.mail as { to?: string } | undefined)?.to === email)
    t.same(lines.map((line) => (line.mail as { kind: string }).kind).sort(), ['reset-password', 'verify-email'])
    t.ok(lines.every((line) => /https?:\/\/\S+\/api\/auth\//.test(line.msg as string)), 'each with its link')
    t.equal(smtp.connections(), 0, 'no SMTP connection was made')
    t.notOk(logs.some((line) => line.msg === 'mail sent' || line.msg === 'mail could not be sent'))
  })
})

// Security review finding 1: for an existing address Better Auth made up a user without the admin plugin's default
// role ("role": null where a new account has "user"), so the answer told who has an account.
t.test('with REQUIRE_EMAIL_VERIFICATION, sign-up answers an existing address exactly as a new one', async (t) => {
  const mail = await startMailServer(t)
  const { url, databaseUrl } = await buildTestApp(t, { listen: true, env: { APP_NAME, REQUIRE_EMAIL_VERIFICATION: 'true', ...mailEnv(mail) } })
  const signUpAs = async (email: string) => {
    const started = performance.now()
    const response = await browserClient(url).post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Same Name' })
    return { response, ms: performance.now() - started }
  }
  // Addresses of one length, so that nothing but the account's existence could change the answer's size.
  const existing = 'taken-00@example.com'
  t.equal((await signUpAs(existing)).response.status, 200)
  await query(databaseUrl, 'UPDATE "user" SET "emailVerified" = true WHERE email = $1', [existing])

  // Fields that echo the request or are made for each answer; everything else must match.
  const ECHOED = new Set(['id', 'email', 'createdAt', 'updatedAt'])
  const HEADERS_PER_ANSWER = new Set(['date', 'x-request-id'])
  const shape = ({ response }: Awaited<ReturnType<typeof signUpAs>>) => ({
    status: response.status,
    headers: [...response.headers].filter(([name]) => !HEADERS_PER_ANSWER.has(name)),
    cookies: response.headers.getSetCookie(),
    body: JSON.parse(response.text, (key, value) => ECHOED.has(key) ? typeof value : value)
  })
  const timings = { existing: [] as number[], fresh: [] as number[] }
  for (let i = 1; i <= 8; i++) {
    const forExisting = await signUpAs(existing)
    const forNew = await signUpAs(`fresh-${String(i).padStart(2, '0')}@example.com`)
    t.same(shape(forExisting), shape(forNew), `attempt ${i}: status, headers, cookies and body match`)
    timings.existing.push(forExisting.ms)
    timings.fresh.push(forNew.ms)
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(1)
  t.comment(`sign-up medians over 8: existing address ${median(timings.existing)} ms, new address ${median(timings.fresh)} ms`)
})

// Security review finding 8: an older reset link must not outlive a newer one's use, nor a password change.
t.test('using a reset link, or changing the password, ends every other reset link of the user', async (t) => {
  const { url } = main
  const email = 'two-links@example.com'
  const owner = browserClient(url)
  await signUp(t, owner, email)
  const resetLink = async () => {
    t.equal((await browserClient(url).post('/api/auth/request-password-reset', { email })).status, 200)
    return new URL((await mail.waitForMail(email, { subject: /reset your password/ })).link!).pathname.split('/').pop()!
  }
  const reset = (token: string, newPassword: string) => browserClient(url).post('/api/auth/reset-password', { token, newPassword })

  const older = await resetLink()
  const newer = await resetLink()
  t.equal((await reset(newer, NEW_PASSWORD)).status, 200, 'the newer link resets the password')
  const stale = await reset(older, 'an attacker chose this one')
  t.equal(stale.status, 400, 'the older link is dead')
  t.equal(stale.json().code, 'INVALID_TOKEN')
  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email, password: 'an attacker chose this one' })).status, 401)

  const beforeChange = await resetLink()
  const signedIn = browserClient(url)
  t.equal((await signedIn.post('/api/auth/sign-in/email', { email, password: NEW_PASSWORD })).status, 200)
  t.equal((await signedIn.post('/api/auth/change-password', { currentPassword: NEW_PASSWORD, newPassword: PASSWORD })).status, 200)
  t.equal((await reset(beforeChange, 'an attacker chose this one')).status, 400, 'a link from before a password change is dead')
  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email, password: PASSWORD })).status, 200, 'the changed password works')
})

// Security review finding 7, the emailed way in: a verification link signs in (autoSignInAfterVerification), so it
// too asks a user with two-factor on for the code; a browser already signed in just stays signed in.
t.test('a verification link asks for the second factor before it signs anyone in', async (t) => {
  const { url, databaseUrl } = main
  const email = 'verify-totp@example.com'
  const owner = browserClient(url)
  await signUp(t, owner, email)
  const link = checkMail(t, await mail.waitForMail(email, { subject: /confirm your email address/ }), { to: email, url, path: '/api/auth/verify-email' })
  const enable = await owner.post('/api/auth/two-factor/enable', { password: PASSWORD })
  const totp = OTPAuth.URI.parse(enable.json().totpURI) as OTPAuth.TOTP
  t.equal((await owner.post('/api/auth/two-factor/verify-totp', { code: totp.generate() })).status, 200, 'two-factor on')
  const sessionsBefore = await sessionCount(databaseUrl, email)

  const mailbox = browserClient(url)
  const followed = await mailbox.get(pathOf(link))
  t.equal(await emailVerified(databaseUrl, email), true, 'the address is verified')
  t.equal((await mailbox.get('/api/me')).status, 401, 'the link alone gives no session')
  t.equal(await sessionCount(databaseUrl, email), sessionsBefore, 'and no session row')
  const landed = followed.status === 302 ? new URL(followed.headers.get('location')!).pathname : followed.json()
  t.ok(landed === '/two-factor' || landed?.twoFactorRedirect === true, `asked for the code (${followed.status} ${followed.text})`)
  // Enrolling spent the current code (each works once): the next period's is accepted too.
  t.equal((await mailbox.post('/api/auth/two-factor/verify-totp', { code: totp.generate({ timestamp: Date.now() + 30_000 }) })).status, 200)
  t.equal((await mailbox.get('/api/me')).json().user.email, email, 'the code completes the sign-in')
  t.equal((await owner.get('/api/me')).status, 200, 'the enrolling browser is still signed in')
})

// --- helpers ---------------------------------------------------------------------------------------------------------

async function signUp (t: Test, browser: Browser, email: string) {
  const response = await browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: email.split('@')[0] })
  t.equal(response.status, 200, `sign-up of ${email}`, { body: response.text })
  return response
}

/** Checks a received message (recipient, subject with APP_NAME, the same link in both parts) and returns its link. */
function checkMail (t: Test, message: ReceivedMail, { to, url, path }: { to: string, url: string, path: string }): string {
  t.same(message.to, [to], 'sent to the right address')
  t.match(message.from, 'no-reply@pond.example', 'from MAIL_FROM')
  t.ok(message.subject.startsWith(`${APP_NAME}: `), `the subject names the app: ${message.subject}`)
  t.ok(message.text.includes(APP_NAME), 'the text part names the app')
  t.ok(message.html.includes(APP_NAME), 'the HTML part names the app')
  const link = message.link
  t.ok(link?.startsWith(`${url}${path}`), `the text part has the link: ${link}`)
  const hrefs = [...message.html.matchAll(/href="([^"]*)"/g)].map((match) => unescapeHtml(match[1]!))
  t.same(hrefs, [link], 'the HTML part links to the same URL')
  return link!
}

function unescapeHtml (value: string) {
  return value.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>')
}

/** The path and query of an emailed link, for the browser client (which resolves it against the API's base URL). */
function pathOf (link: string) {
  const parsed = new URL(link)
  return parsed.pathname + parsed.search
}

async function emailVerified (databaseUrl: string, email: string) {
  const { rows } = await query(databaseUrl, 'SELECT "emailVerified" FROM "user" WHERE email = $1', [email])
  return rows[0]?.emailVerified as boolean | undefined
}

async function userEmail (databaseUrl: string, email: string) {
  const { rows } = await query(databaseUrl, 'SELECT email FROM "user" WHERE email = $1', [email])
  return rows[0]?.email as string | undefined
}

async function sessionCount (databaseUrl: string, email: string) {
  const { rows } = await query(databaseUrl,
    'SELECT count(*)::int AS n FROM session WHERE "userId" = (SELECT id FROM "user" WHERE email = $1)', [email])
  return rows[0].n as number
}

async function rowsOf (databaseUrl: string, userId: string) {
  const { rows } = await query(databaseUrl, `SELECT
    (SELECT count(*)::int FROM "user" WHERE id = $1) AS "user",
    (SELECT count(*)::int FROM session WHERE "userId" = $1) AS session,
    (SELECT count(*)::int FROM account WHERE "userId" = $1) AS account`, [userId])
  return rows[0] as { user: number, session: number, account: number }
}

async function resetToken (databaseUrl: string, email: string) {
  const { rows } = await query(databaseUrl, `SELECT identifier FROM verification
    WHERE identifier LIKE 'reset-password:%' AND value = (SELECT id FROM "user" WHERE email = $1)`, [email])
  return (rows[0]?.identifier as string | undefined)?.slice('reset-password:'.length)
}

/** Sign-up and a reset request on a service whose mail fails: the same answers as always, the failure only logged. */
async function answersAsNormal (t: Test, { url, logs, databaseUrl }: { url: string, logs: LogLine[], databaseUrl: string },
  email: string, normalResetText: string) {
  const browser = browserClient(url)
  const signUp = await browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Unlucky' })
  t.equal(signUp.status, 200, 'sign-up answers', { body: signUp.text })
  t.same(Object.keys(signUp.json()).sort(), ['token', 'user'])
  t.equal(signUp.json().user.email, email)
  t.type(signUp.json().token, 'string')
  // ("email" is a field of the user; nothing about sending it may show.)
  t.notMatch(signUp.text, /smtp|econn|550|mailbox|failed|could not|"error"/i, 'no trace of the failure in the answer')
  t.equal((await browser.get('/api/me')).status, 200, 'signed in as usual')

  const reset = await browserClient(url).post('/api/auth/request-password-reset', { email })
  t.equal(reset.status, 200)
  t.equal(reset.text, normalResetText, 'the reset answer is the usual one')

  const failures = await waitForLogs(logs, 2, (line) => line.msg === 'mail could not be sent')
  t.same(failures.map((line) => (line.mail as { kind: string }).kind).sort(), ['reset-password', 'verify-email'])
  const token = await resetToken(databaseUrl, email)
  t.ok(token, 'the reset token exists (in the database only)')
  for (const line of failures) checkFailureLine(t, line, email, [token])
  t.notOk(logs.some((line) => line.msg === 'mail sent'))
}

function checkFailureLine (t: Test, line: LogLine, email: string, secrets: Array<string | undefined>) {
  const text = JSON.stringify(line)
  t.equal(line.level, 50, 'logged as an error')
  t.ok((line.err as { message?: string } | undefined)?.message, `with the reason: ${(line.err as { message?: string }).message}`)
  t.notOk(text.includes(email), 'without the recipient address')
  t.notOk(text.toLowerCase().includes(email.split('@')[0]!), 'not even its local part')
  t.notOk(/https?:\/\/|\/api\/auth\/|token=|eyJ/.test(text), 'without the link or a token')
  for (const secret of secrets.filter((s): s is string => s !== undefined)) t.notOk(text.includes(secret), 'without the reset token')
}

async function waitForLog (logs: LogLine[], predicate: (line: LogLine) => boolean) {
  return (await waitForLogs(logs, 1, predicate))[0]!
}

/** The first `count` log lines matching `predicate`, waiting (up to 5 s) for them to be written. */
async function waitForLogs (logs: LogLine[], count: number, predicate: (line: LogLine) => boolean) {
  const deadline = Date.now() + 5_000
  for (;;) {
    const lines = logs.filter(predicate)
    if (lines.length >= count) return lines.slice(0, count)
    if (Date.now() > deadline) throw new Error(`expected ${count} matching log lines, found ${lines.length}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A TCP server at an smtp:// URL that accepts connections and never says anything (no SMTP greeting). */
async function silentServer (t: Test) {
  const sockets = new Set<Socket>()
  let accepted = 0
  let received = 0
  let closed = false
  const closeWaiters: Array<() => void> = []
  const acceptWaiters: Array<() => void> = []
  const server = createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('data', (chunk) => { received += chunk.length })
    socket.on('error', () => {})
    socket.on('close', () => {
      sockets.delete(socket)
      closed = true
      for (const wake of closeWaiters.splice(0)) wake()
    })
    for (const wake of acceptWaiters.splice(0)) wake()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const hangUp = () => { for (const socket of sockets) socket.destroy() }
  t.teardown(() => {
    hangUp()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    url: `smtp://127.0.0.1:${(server.address() as { port: number }).port}`,
    connections: () => accepted,
    bytesReceived: () => received,
    hangUp,
    /** Resolves once `count` connections were accepted. */
    async connected (count: number) {
      while (accepted < count) await new Promise<void>((resolve) => acceptWaiters.push(resolve))
    },
    /** Resolves when any connection closes (the client gave up, or hangUp). */
    anyClose: () => closed ? Promise.resolve() : new Promise<void>((resolve) => closeWaiters.push(resolve))
  }
}

/** The answer, provided it comes before any SMTP connection closes: proof that it did not wait for the mail. */
async function beforeAnyClose<T> (smtp: { anyClose: () => Promise<void> }, answer: Promise<T>): Promise<T> {
  return Promise.race([
    answer,
    smtp.anyClose().then(() => { throw new Error('an SMTP connection closed before the answer came: the answer waited for the mail') })
  ])
}
