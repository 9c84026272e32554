// The audit trail end to end: real flows through HTTP leave exactly their events (and nothing secret) in
// audit_event; users list their own, admins query everything; old events are pruned; a broken audit write never
// breaks the request it describes.
import * as OTPAuth from 'otpauth'
import t, { type Test } from 'tap'
import { pruneEvents } from '../src/audit/events.js'
import { migrate, pendingMigrations } from '../src/auth/migrations.js'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'
import { mailEnv, startMailServer } from './helpers/mail-server.js'

const PASSWORD = 'audit-pass-Quokka-1'
const NEW_PASSWORD = 'audit-pass-Wombat-2'
const RESET_PASSWORD = 'audit-pass-Numbat-3'
const USER_AGENT = 'AuditTest/1.0 (pond)'

const mail = await startMailServer(t)
const { app, url, databaseUrl, rawLogs } = await buildTestApp(t, { listen: true, env: mailEnv(mail) })

type Browser = ReturnType<typeof browserClient>
interface Row { id: string, type: string, userId: string | null, createdAt: Date, ipAddress: string | null, userAgent: string | null, detail: Record<string, unknown> }

/** Everything that should never be in the table: collected as the flows produce it. */
const secrets = new Set<string>([PASSWORD, NEW_PASSWORD, RESET_PASSWORD])

const browser = () => {
  const client = browserClient(url)
  const withAgent = (headers?: Record<string, string>) => ({ 'user-agent': USER_AGENT, ...headers })
  return {
    ...client,
    get: (path: string, headers?: Record<string, string>) => client.get(path, withAgent(headers)),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => client.post(path, body, withAgent(headers))
  }
}

async function collectCookies (client: Browser) {
  for (const cookie of await client.cookies()) {
    secrets.add(cookie.value)
    secrets.add(decodeURIComponent(cookie.value).split('.')[0]!)
  }
}

async function signUp (email: string) {
  const client = browser()
  const response = await client.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: email.split('@')[0] })
  if (response.status !== 200) throw new Error(`sign-up ${email}: ${response.status} ${response.text}`)
  await collectCookies(client)
  return { client, userId: response.json().user.id as string }
}

async function eventsOf (userId: string): Promise<Row[]> {
  const { rows } = await query(databaseUrl, 'SELECT * FROM audit_event WHERE "userId" = $1 ORDER BY "createdAt", id', [userId])
  return rows as Row[]
}
const typesOf = async (userId: string) => (await eventsOf(userId)).map((event) => event.type)
const linkPath = (link: string) => {
  const parsed = new URL(link)
  for (const value of parsed.searchParams.values()) secrets.add(value)
  return parsed.pathname + parsed.search
}

t.test('sign-up, sign-in (ok and failed), sign-out, revocations, password change: their events, with IP and agent', async (t) => {
  const { client, userId } = await signUp('ada@example.com')
  const signedUp = await eventsOf(userId)
  t.same(signedUp.map((event) => event.type), ['sign_up', 'sign_in.succeeded'])
  t.same(signedUp[0]!.detail, { method: 'email' })
  t.match(signedUp[1]!.detail, { method: 'email', sessionId: String })
  for (const event of signedUp) {
    t.equal(event.ipAddress, '127.0.0.1', 'the trusted client address')
    t.equal(event.userAgent, USER_AGENT)
  }

  const wrong = await browser().post('/api/auth/sign-in/email', { email: 'ada@example.com', password: 'not-her-password' })
  t.equal(wrong.status, 401)
  const unknown = await browser().post('/api/auth/sign-in/email', { email: 'nobody@example.com', password: 'whatever-1234' })
  t.equal(unknown.status, 401)
  secrets.add('not-her-password').add('whatever-1234')
  const failed = (await eventsOf(userId)).at(-1)!
  t.match(failed, { type: 'sign_in.failed', detail: { method: 'email', reason: 'INVALID_EMAIL_OR_PASSWORD' } })
  const { rows: anonymous } = await query(databaseUrl, 'SELECT * FROM audit_event WHERE type = \'sign_in.failed\' AND "userId" IS NULL')
  t.equal(anonymous.length, 1, 'an unknown address: a failure without a user')
  t.notOk(JSON.stringify(anonymous).includes('nobody@example.com'), 'the attempted address is not stored')

  const phone = browser()
  t.equal((await phone.post('/api/auth/sign-in/email', { email: 'ada@example.com', password: PASSWORD })).status, 200)
  const tablet = browser()
  t.equal((await tablet.post('/api/auth/sign-in/email', { email: 'ada@example.com', password: PASSWORD })).status, 200)
  await collectCookies(phone)
  await collectCookies(tablet)
  t.equal((await client.post('/api/auth/revoke-other-sessions', {})).status, 200)
  const revoked = (await eventsOf(userId)).filter((event) => event.type === 'session.revoked')
  t.equal(revoked.length, 2, 'one event per revoked session')
  t.ok(revoked.every((event) => event.detail.scope === 'others'))

  t.equal((await client.post('/api/auth/change-password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })).status, 200)
  await collectCookies(client)
  t.equal((await client.post('/api/auth/sign-out', {})).status, 200)
  t.same(await typesOf(userId), ['sign_up', 'sign_in.succeeded', 'sign_in.failed', 'sign_in.succeeded', 'sign_in.succeeded',
    'session.revoked', 'session.revoked', 'password.changed', 'sign_out'])
  t.same((await eventsOf(userId)).at(-2)!.detail, { revokedOtherSessions: false })
})

t.test('two-factor: enabled, challenged, failed and completed sign-in, disabled', async (t) => {
  const { client, userId } = await signUp('grace@example.com')
  const enable = await client.post('/api/auth/two-factor/enable', { password: PASSWORD })
  t.equal(enable.status, 200)
  const { totpURI, backupCodes } = enable.json() as { totpURI: string, backupCodes: string[] }
  const totp = OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP
  secrets.add(totp.secret.base32)
  for (const code of backupCodes) secrets.add(code)
  const enrolCode = totp.generate()
  t.equal((await client.post('/api/auth/two-factor/verify-totp', { code: enrolCode })).status, 200)

  const second = browser()
  const step1 = await second.post('/api/auth/sign-in/email', { email: 'grace@example.com', password: PASSWORD })
  t.same(step1.json(), { twoFactorRedirect: true, twoFactorMethods: ['totp'] })
  const wrongCode = String((Number(totp.generate()) + 500_000) % 1_000_000).padStart(6, '0')
  t.equal((await second.post('/api/auth/two-factor/verify-totp', { code: wrongCode })).status, 401)
  // The next period's code: the enrolment's may not be replayed.
  const code = totp.generate({ timestamp: Date.now() + 30_000 })
  const step2 = await second.post('/api/auth/two-factor/verify-totp', { code })
  t.equal(step2.status, 200, 'second factor accepted', { body: step2.text })
  await collectCookies(second)
  t.equal((await second.post('/api/auth/two-factor/disable', { password: PASSWORD })).status, 200)

  const events = await eventsOf(userId)
  t.same(events.map((event) => event.type), ['sign_up', 'sign_in.succeeded', 'two_factor.enabled',
    'sign_in.second_factor_required', 'sign_in.failed', 'sign_in.succeeded', 'two_factor.disabled'])
  t.match(events[4]!.detail, { method: 'two_factor', secondFactor: 'totp', reason: 'INVALID_CODE' })
  t.match(events[5]!.detail, { method: 'two_factor', secondFactor: 'totp', sessionId: String })
  secrets.add(wrongCode)
  secrets.add(enrolCode)
  secrets.add(code)
})

t.test('email verification, email change, password reset, deletion: their events', async (t) => {
  const email = 'mover@example.com'
  const { client, userId } = await signUp(email)
  const verify = await mail.waitForMail(email, { subject: /confirm your email address/ })
  // Opened in another browser: verification signs that browser in.
  const elsewhere = browser()
  t.equal((await elsewhere.get(linkPath(verify.link!))).status, 302)
  t.equal((await client.post('/api/auth/change-email', { newEmail: 'moved@example.com' })).status, 200)
  const confirm = await mail.waitForMail(email, { subject: /confirm changing your email address/ })
  t.equal((await client.get(linkPath(confirm.link!))).status, 302)
  const verifyNew = await mail.waitForMail('moved@example.com', { subject: /confirm your email address/ })
  t.equal((await client.get(linkPath(verifyNew.link!))).status, 302)

  t.equal((await browser().post('/api/auth/request-password-reset', { email: 'moved@example.com', redirectTo: '/reset' })).status, 200)
  const reset = await mail.waitForMail('moved@example.com', { subject: /reset your password/ })
  const resetToken = new URL(reset.link!).pathname.split('/').at(-1)!
  secrets.add(resetToken)
  linkPath(reset.link!)
  t.equal((await browser().post('/api/auth/reset-password', { token: resetToken, newPassword: RESET_PASSWORD })).status, 200)

  const again = browser()
  t.equal((await again.post('/api/auth/sign-in/email', { email: 'moved@example.com', password: RESET_PASSWORD })).status, 200)
  t.equal((await again.post('/api/auth/delete-user', {})).status, 200)
  const deletion = await mail.waitForMail('moved@example.com', { subject: /confirm deleting your account/ })
  t.equal((await again.get(linkPath(deletion.link!))).status, 302)

  const events = await eventsOf(userId)
  t.same(events.map((event) => event.type), ['sign_up', 'sign_in.succeeded', 'email.verified', 'sign_in.succeeded',
    'email.change_requested', 'email.changed', 'password.reset', 'sign_in.succeeded', 'account.deletion_requested',
    'account.deleted'])
  t.match(events[3]!.detail, { method: 'email_verification' })
  t.same(events[5]!.detail, { verified: true })
  t.same(events[6]!.detail, { revokedSessions: true })
  t.same((await query(databaseUrl, 'SELECT id FROM "user" WHERE id = $1', [userId])).rows, [], 'the account is gone, its events stay')
  t.notOk(JSON.stringify(events).includes('mover@') || JSON.stringify(events).includes('moved@'), 'no addresses')
})

t.test('admin actions (role, ban, unban, revoke, remove) name the admin; listings; filters; pages; 401/403/400', async (t) => {
  const boss = await signUp('boss@example.com')
  await query(databaseUrl, 'UPDATE "user" SET role = \'admin\' WHERE id = $1', [boss.userId])
  const target = await signUp('target@example.com')
  const gone = await signUp('gone@example.com')
  const admin = boss.client

  t.equal((await admin.post('/api/auth/admin/set-role', { userId: target.userId, role: 'admin' })).status, 200)
  t.equal((await admin.post('/api/auth/admin/set-role', { userId: target.userId, role: 'user' })).status, 200)
  t.equal((await admin.post('/api/auth/admin/ban-user', { userId: target.userId, banReason: 'spam' })).status, 200)
  const banned = await browser().post('/api/auth/sign-in/email', { email: 'target@example.com', password: PASSWORD })
  t.equal(banned.status, 403)
  t.equal((await admin.post('/api/auth/admin/unban-user', { userId: target.userId })).status, 200)
  const back = browser()
  t.equal((await back.post('/api/auth/sign-in/email', { email: 'target@example.com', password: PASSWORD })).status, 200)
  t.equal((await admin.post('/api/auth/admin/revoke-user-sessions', { userId: target.userId })).status, 200)
  t.equal((await admin.post('/api/auth/admin/remove-user', { userId: gone.userId })).status, 200)

  const events = await eventsOf(target.userId)
  t.same(events.map((event) => event.type), ['sign_up', 'sign_in.succeeded', 'role.changed', 'role.changed', 'user.banned',
    'sign_in.failed', 'user.unbanned', 'sign_in.succeeded', 'session.revoked'])
  t.same(events[2]!.detail, { role: 'admin', actorId: boss.userId })
  t.same(events[3]!.detail, { role: 'user', actorId: boss.userId })
  t.same(events[4]!.detail, { expiresAt: null, actorId: boss.userId })
  t.match(events[5]!.detail, { reason: 'BANNED_USER' })
  t.same(events[6]!.detail, { actorId: boss.userId, expired: false })
  t.match(events[8]!.detail, { scope: 'all', actorId: boss.userId })
  t.match(await eventsOf(gone.userId), [{ type: 'sign_up' }, { type: 'sign_in.succeeded' }, { type: 'account.deleted', detail: { actorId: boss.userId } }])

  // A user's own listing: only their events, newest first, in pages that neither skip nor repeat.
  const own = await target.client.get('/api/me/security-events')
  t.equal(own.status, 401, 'her sessions were revoked')
  const mine = await back.get('/api/me/security-events')
  t.equal(mine.status, 401, 'this one too')
  const fresh = browser()
  t.equal((await fresh.post('/api/auth/sign-in/email', { email: 'target@example.com', password: PASSWORD })).status, 200)
  await collectCookies(fresh)
  const listed = (await fresh.get('/api/me/security-events')).json() as { events: Row[], nextCursor: string | null }
  t.equal(listed.events.length, 10)
  t.ok(listed.events.every((event) => event.userId === target.userId), 'only her events')
  t.same(listed.events.map((event) => event.type), [...events.map((event) => event.type), 'sign_in.succeeded'].reverse())
  t.equal(listed.nextCursor, null)
  t.equal(listed.events[0]!.ipAddress, '127.0.0.1')
  const paged: string[] = []
  for (let cursor: string | null = '', pages = 0; cursor !== null; pages++) {
    const page = await fresh.get(`/api/me/security-events?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
    t.equal(page.status, 200)
    const body = page.json() as { events: Row[], nextCursor: string | null }
    paged.push(...body.events.map((event) => event.id))
    cursor = body.nextCursor
    if (pages > 5) throw new Error('too many pages')
  }
  t.same(paged, listed.events.map((event) => event.id), 'pages of 3 give the same events in the same order')

  // Admin queries.
  t.equal((await browser().get('/api/admin/audit-events')).status, 401)
  const forbidden = await fresh.get('/api/admin/audit-events')
  t.equal(forbidden.status, 403)
  t.equal(forbidden.json().code, 'FORBIDDEN')
  const byUser = (await admin.get(`/api/admin/audit-events?userId=${target.userId}`)).json() as { events: Row[] }
  t.same(byUser.events.map((event) => event.id), listed.events.map((event) => event.id))
  const bans = (await admin.get('/api/admin/audit-events?type=user.banned')).json() as { events: Row[] }
  t.same(bans.events.map((event) => event.userId), [target.userId])
  const all = (await admin.get('/api/admin/audit-events?limit=100')).json() as { events: Row[] }
  const { rows: [{ n }] } = await query(databaseUrl, 'SELECT count(*)::int AS n FROM audit_event')
  t.equal(all.events.length, Math.min(n, 100))
  const middle = listed.events[5]!.createdAt
  const since = (await admin.get(`/api/admin/audit-events?userId=${target.userId}&from=${encodeURIComponent(middle as unknown as string)}`)).json() as { events: Row[] }
  t.same(since.events.map((event) => event.id), listed.events.slice(0, 6).map((event) => event.id), 'from is inclusive')
  const before = (await admin.get(`/api/admin/audit-events?userId=${target.userId}&to=${encodeURIComponent(middle as unknown as string)}`)).json() as { events: Row[] }
  t.same(before.events.map((event) => event.id), listed.events.slice(6).map((event) => event.id), 'to is exclusive')

  for (const bad of ['limit=0', 'limit=101', 'limit=abc', 'type=nope', 'from=yesterday', 'cursor=xyz', 'userId=',
    'from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z', `cursor=${Buffer.from('["x","y"]').toString('base64url')}`]) {
    const answer = await admin.get(`/api/admin/audit-events?${bad}`)
    t.equal(answer.status, 400, bad, { body: answer.text })
    t.equal(answer.json().code, 'INVALID_QUERY', bad)
  }
  t.equal((await fresh.get('/api/me/security-events?limit=500')).json().code, 'INVALID_QUERY')
})

t.test('a ban that has expired is lifted at the next sign-in, recorded as expired and by nobody', async (t) => {
  const { userId } = await signUp('expired-ban@example.com')
  await query(databaseUrl, 'UPDATE "user" SET banned = true, "banReason" = \'spam\', "banExpires" = now() - interval \'1 minute\' WHERE id = $1', [userId])
  const client = browser()
  t.equal((await client.post('/api/auth/sign-in/email', { email: 'expired-ban@example.com', password: PASSWORD })).status, 200)
  const events = await eventsOf(userId)
  t.same(events.map((event) => event.type), ['sign_up', 'sign_in.succeeded', 'user.unbanned', 'sign_in.succeeded'])
  t.same(events[2]!.detail, { expired: true }, 'no actor: the ban ran out')
  const { rows: [user] } = await query(databaseUrl, 'SELECT banned FROM "user" WHERE id = $1', [userId])
  t.equal(user.banned, false)
})

t.test('impersonation: its event names the admin; the admin acts as the user, then comes back', async (t) => {
  const boss = await signUp('imp-boss@example.com')
  await query(databaseUrl, 'UPDATE "user" SET role = \'admin\' WHERE id = $1', [boss.userId])
  const target = await signUp('imp-target@example.com')

  t.equal((await boss.client.post('/api/auth/admin/impersonate-user', { userId: target.userId })).status, 200)
  await collectCookies(boss.client)
  t.equal((await boss.client.get('/api/me')).json().user.id, target.userId, 'the admin now acts as the user')
  const events = await eventsOf(target.userId)
  t.same(events.map((event) => event.type), ['sign_up', 'sign_in.succeeded', 'impersonation.started'])
  t.same(events[2]!.detail, { actorId: boss.userId }, 'the admin, not the user, is the actor')
  t.equal(events[2]!.ipAddress, '127.0.0.1')
  t.equal(events[2]!.userAgent, USER_AGENT)
  t.same(await typesOf(boss.userId), ['sign_up', 'sign_in.succeeded'], 'nothing is recorded as the admin\'s own')

  t.equal((await boss.client.post('/api/auth/admin/stop-impersonating')).status, 200)
  t.equal((await boss.client.get('/api/me')).json().user.id, boss.userId, 'and is the admin again')
})

// Security review findings 4 and 11: acts under impersonation were stored as the user's own; the impersonation
// session slid to 7 days once its dont_remember cookie was dropped, hid from the user, and admins saw raw tokens.
t.test('impersonation: every act names the admin; the session ends within its hour, the user sees it, admins see no tokens', async (t) => {
  const boss = await signUp('imp2-boss@example.com')
  await query(databaseUrl, 'UPDATE "user" SET role = \'admin\' WHERE id = $1', [boss.userId])
  const target = await signUp('imp2-target@example.com')

  const listed = await boss.client.get(`/api/auth/admin/list-user-sessions?userId=${target.userId}`)
  const listedBody = listed.status === 200 ? listed.json() : await boss.client.post('/api/auth/admin/list-user-sessions', { userId: target.userId }).then((r) => r.json())
  t.ok(listedBody.sessions.length > 0, 'the admin lists the user\'s sessions')
  t.ok(listedBody.sessions.every((session: Record<string, unknown>) => !('token' in session)), 'without their tokens')
  const revokeOne = await boss.client.post('/api/auth/admin/revoke-user-session', { sessionId: listedBody.sessions[0].id })
  t.equal(revokeOne.status, 200, 'and revoke one by its id')
  t.equal((await target.client.get('/api/me')).status, 401, 'which ends it')
  t.equal((await boss.client.post('/api/auth/admin/revoke-user-session', { sessionId: 'no-such-session' })).status, 404)

  t.equal((await boss.client.post('/api/auth/admin/impersonate-user', { userId: target.userId })).status, 200)
  await collectCookies(boss.client)
  // The admin's browser drops the dont_remember cookie; the session must not slide past its hour.
  const cookies = await boss.client.cookies()
  const sessionCookie = cookies.find((cookie) => cookie.key === 'better-auth.session_token')!
  const impersonating = browserClient(url)
  await impersonating.jar.setCookie(`better-auth.session_token=${sessionCookie.value}`, url)
  t.equal((await impersonating.get('/api/auth/get-session')).status, 200)
  const { rows: [row] } = await query(databaseUrl,
    'SELECT extract(epoch FROM "expiresAt" - "createdAt")::int AS seconds FROM session WHERE "impersonatedBy" = $1', [boss.userId])
  t.ok(row.seconds <= 3600, `the impersonation session still ends within its hour (${row.seconds} s after it began)`)

  // Acts of the impersonated session (the user signed in elsewhere first, so that there is another session to end).
  t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email: 'imp2-target@example.com', password: PASSWORD })).status, 200)
  t.equal((await boss.client.post('/api/auth/revoke-other-sessions')).status, 200)
  t.equal((await boss.client.post('/api/auth/change-email', { newEmail: 'imp2-moved@example.com' })).status, 200)
  const events = await eventsOf(target.userId)
  const acts = events.slice(events.findIndex((event) => event.type === 'impersonation.started') + 1)
    .filter((event) => event.type === 'session.revoked' || event.type.startsWith('email.'))
  t.ok(acts.length >= 2, `acts recorded: ${acts.map((event) => event.type).join(', ')}`)
  for (const event of acts) t.equal(event.detail.impersonatedBy, boss.userId, `${event.type} names the admin`)

  // The user, signing in, sees the impersonation among their sessions and an administrator in their feed.
  const owner = browserClient(url)
  t.equal((await owner.post('/api/auth/sign-in/email', { email: 'imp2-target@example.com', password: PASSWORD })).status, 200)
  const sessions = (await owner.get('/api/auth/list-sessions')).json() as Array<{ impersonatedBy?: string | null }>
  t.ok(sessions.some((session) => session.impersonatedBy === boss.userId), 'the user\'s session list shows the impersonation')
  const feed = (await owner.get('/api/me/security-events')).json().events as Array<{ type: string, detail: Record<string, unknown> }>
  const changeRequested = feed.find((event) => event.type === 'email.change_requested')
  t.equal(changeRequested?.detail.impersonatedBy, boss.userId, 'the feed says which administrator acted')
})

t.test('nothing secret anywhere in the table: passwords, tokens, cookies, codes, links', async (t) => {
  // createdAt is left out: its microseconds could match a six-digit code by chance.
  const { rows } = await query(databaseUrl,
    'SELECT string_agg(concat_ws(\' \', id, type, "userId", "ipAddress", "userAgent", detail::text), E\'\\n\') AS text FROM audit_event')
  const text = rows[0].text as string
  t.ok(text.length > 1000, 'the flows above wrote events')
  const found = [...secrets].filter((secret) => secret.length >= 6 && text.includes(secret))
  t.same(found.map((secret) => `${secret.slice(0, 3)}… (${secret.length} chars)`), [], 'no secret is in audit_event')
  t.ok(secrets.size > 20, `searched for ${secrets.size} secrets`)
  t.notMatch(text, /https?:\/\//, 'no links')
})

t.test('a broken audit write never breaks the request; the missing table is a pending migration', async (t) => {
  await query(databaseUrl, 'DROP TABLE audit_event')
  const { changes } = await pendingMigrations(app.auth)
  t.ok(changes.includes('table "audit_event"'), 'the table is reported missing', { changes })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)

  const client = browser()
  const signIn = await client.post('/api/auth/sign-in/email', { email: 'boss@example.com', password: PASSWORD })
  t.equal(signIn.status, 200, 'sign-in works without the table')
  t.equal((await client.get('/api/me')).status, 200)
  const listing = await client.get('/api/me/security-events')
  t.ok(listing.status >= 500, 'the listing itself cannot work without the table')
  t.match(listing.json(), { code: String, message: String })
  const logged = rawLogs().split('\n').filter((line) => line.includes('audit event not written'))
  t.ok(logged.length > 0, 'the failed write is logged')
  t.notOk(logged.some((line) => line.includes(PASSWORD) || line.includes('boss@example.com')), 'without secrets or addresses')

  // pnpm migrate brings it back.
  await migrate(app.auth, app.pg)
  t.same((await pendingMigrations(app.auth)).changes, [], 'nothing pending after the migration')
  t.equal((await client.get('/api/me/security-events')).status, 200)
})

t.test('pruning removes only events older than AUDIT_RETENTION_DAYS, in batches, from several machines at once', async (t) => {
  const { rows: [{ n: before }] } = await query(databaseUrl, 'SELECT count(*)::int AS n FROM audit_event')
  await query(databaseUrl, `INSERT INTO audit_event (id, type, "createdAt", detail)
    SELECT 'old-' || i, 'sign_out', now() - interval '91 days' - i * interval '1 minute', '{}' FROM generate_series(1, 25) AS i`)
  await query(databaseUrl, `INSERT INTO audit_event (id, type, "createdAt", detail)
    VALUES ('recent', 'sign_out', now() - interval '89 days', '{}')`)
  const deleted = await Promise.all([
    pruneEvents(app.pg, 90, { batchSize: 4 }),
    pruneEvents(app.pg, 90, { batchSize: 4 }),
    app.pruneAuditEvents()
  ])
  t.equal(deleted.reduce((sum, count) => sum + count, 0), 25, 'every old event deleted once')
  const { rows: [{ n: after }] } = await query(databaseUrl, 'SELECT count(*)::int AS n FROM audit_event')
  t.equal(after, before + 1, 'the recent one and everything newer stay')
  t.equal(await app.pruneAuditEvents(), 0, 'nothing left to prune')
})

t.test('a new app prunes at start with its own AUDIT_RETENTION_DAYS', async (t: Test) => {
  await query(databaseUrl, `INSERT INTO audit_event (id, type, "createdAt", detail) VALUES ('week-old', 'sign_out', now() - interval '8 days', '{}'), ('day-old', 'sign_out', now() - interval '1 day', '{}')`)
  const { buildApp } = await import('../src/app.js')
  const second = await buildApp({ env: { DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: 'x'.repeat(40), TRUSTED_ORIGINS: TRUSTED_ORIGIN, AUDIT_RETENTION_DAYS: '7' } })
  t.teardown(() => second.close())
  await second.pruneAuditEvents()
  t.same((await query(databaseUrl, 'SELECT id FROM audit_event WHERE id = \'week-old\'')).rows, [])
  t.same((await query(databaseUrl, 'SELECT id FROM audit_event WHERE id = \'day-old\'')).rows, [{ id: 'day-old' }], 'newer events stay')
})

t.test('an audit write still waiting for a connection when the app closes is written before the pool ends', async (t: Test) => {
  const own = await buildTestApp(t, {})
  const pool = own.app.pg
  // Every connection but one is busy, and the table is locked: the sign-up's first event blocks that one connection,
  // so its second event waits in the pool's queue. The request answers anyway (it waits 0.5 s per event at most).
  const held = await Promise.all(Array.from({ length: pool.options.max - 1 }, () => pool.connect()))
  const locker = await pool.connect()
  const lockHolder = new (await import('pg')).default.Client({ connectionString: own.databaseUrl })
  await lockHolder.connect()
  t.teardown(() => lockHolder.end())
  await lockHolder.query('BEGIN; LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE')
  locker.release()
  const signUp = await own.app.inject({
    method: 'POST',
    url: '/api/auth/sign-up/email',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
    payload: { email: 'closing@example.com', password: PASSWORD, name: 'Closing' }
  })
  t.equal(signUp.statusCode, 200, 'the sign-up answers')
  t.equal(pool.waitingCount, 1, 'the second event waits for a connection')

  // Closing starts; then the busy connections come back and the lock goes, as they would under load.
  const closed = own.app.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  for (const client of held) client.release()
  await new Promise((resolve) => setTimeout(resolve, 100))
  await lockHolder.query('COMMIT')
  await closed
  // Sorted by name: both events of one request can carry the same millisecond, so "createdAt" does not order them.
  const { rows } = await query(own.databaseUrl, 'SELECT type FROM audit_event ORDER BY type')
  t.same(rows.map((row) => row.type), ['sign_in.succeeded', 'sign_up'], 'both events were written')
})
