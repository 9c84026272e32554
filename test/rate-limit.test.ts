// Rate limits and several machines: the budgets are per trusted client address, shared by every server process on
// the same database (or Redis), and no forwarding header a client writes buys more attempts.
import { randomInt } from 'node:crypto'
import { freshSessionMiddleware, sensitiveSessionMiddleware, sessionMiddleware } from 'better-auth/api'
import t, { type Test } from 'tap'
import { PASSWORD_CHECK_PATHS, RATE_LIMITS } from '../src/auth/create-auth.js'
import { migrate } from '../src/auth/migrations.js'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'
import { redisReachable } from './helpers/redis.js'
import { clientBudgetKey } from '../src/client-ip.js'
import { ROUTE_RATE_LIMIT } from '../src/plugins/route-rate-limit.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'

const SIGN_IN_MAX = RATE_LIMITS.customRules['/sign-in/*'].max
const BEHIND_PROXY = { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1' }

// Addresses unique to this run, so counters left by an earlier run (Redis keeps them for a window) never count.
const runOctet = randomInt(1, 250)
let nextHost = 0
const newClientIp = () => `198.${runOctet}.${Math.floor(++nextHost / 250)}.${nextHost % 250 + 1}`

async function signInAttempt (url: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/api/auth/sign-in/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ email: 'nobody@example.com', password: 'not the password' })
  })
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() }
}

/** Statuses of `count` attempts, each with the headers `headersFor(i)` gives. */
async function attempts (url: string, count: number, headersFor: (i: number) => Record<string, string>) {
  const statuses: number[] = []
  for (let i = 0; i < count; i++) statuses.push((await signInAttempt(url, headersFor(i))).status)
  return statuses
}

const wrongPassword = (count: number) => Array<number>(count).fill(401)

t.test('the sign-in budget: 429 with Retry-After once spent, per client address', async (t) => {
  const { url } = await buildTestApp(t, { listen: true, env: BEHIND_PROXY })
  const client = { 'x-forwarded-for': newClientIp() }
  t.same(await attempts(url, SIGN_IN_MAX, () => client), wrongPassword(SIGN_IN_MAX), `${SIGN_IN_MAX} attempts are answered`)
  const refused = await signInAttempt(url, client)
  t.equal(refused.status, 429)
  t.ok(Number(refused.retryAfter) > 0 && Number(refused.retryAfter) <= 60, `Retry-After: ${refused.retryAfter}`)
  t.match(JSON.parse(refused.body), { message: /too many requests/i })

  const otherClient = { 'x-forwarded-for': newClientIp() }
  t.equal((await signInAttempt(url, otherClient)).status, 401, 'another address has its own budget')
})

t.test('without a trusted proxy, rotating X-Forwarded-For or forging Fly-Client-IP buys nothing', async (t) => {
  const { url } = await buildTestApp(t, { listen: true, env: { RATE_LIMIT: 'on' } })
  const forged = (i: number) => ({ 'x-forwarded-for': newClientIp(), 'fly-client-ip': newClientIp(), 'x-real-ip': `203.0.113.${i}` })
  t.same(await attempts(url, SIGN_IN_MAX, forged), wrongPassword(SIGN_IN_MAX))
  t.equal((await signInAttempt(url, forged(99))).status, 429, 'the socket address is the budget')
})

t.test('behind the trusted proxy, the left of a many-hop X-Forwarded-For neither merges nor splits budgets', async (t) => {
  const { url } = await buildTestApp(t, { listen: true, env: BEHIND_PROXY })
  const attacker = newClientIp()
  // The attacker rotates what it writes at the left; the proxy appends the address it really saw.
  const rotating = (i: number) => ({ 'x-forwarded-for': `10.9.9.${i}, ${newClientIp()}, ${attacker}` })
  t.same(await attempts(url, SIGN_IN_MAX, rotating), wrongPassword(SIGN_IN_MAX))
  t.equal((await signInAttempt(url, rotating(99))).status, 429, 'rotating the left part buys no attempt')

  // Everyone's chain starts with the same spoofed entries; each real client still has its own budget.
  const sameLeft = `1.1.1.1, 2.2.2.2, ${newClientIp()}`
  t.equal((await signInAttempt(url, { 'x-forwarded-for': sameLeft })).status, 401, 'an innocent client is not in the attacker\'s bucket')
})

t.test('RATE_LIMIT=off is the only way to turn it off', async (t) => {
  const { url } = await buildTestApp(t, { listen: true, env: { RATE_LIMIT: 'off' } })
  t.same(await attempts(url, SIGN_IN_MAX + 2, () => ({})), wrongPassword(SIGN_IN_MAX + 2))
})

// Two server instances on one database: what Fly's proxy sees with several machines.
async function twoMachines (t: Test, env: Record<string, string>) {
  const first = await buildTestApp(t, { listen: true, env })
  const second = await buildTestApp(t, { listen: true, env: { ...env, DATABASE_URL: first.databaseUrl } })
  return [first, second] as const
}

async function severalMachines (t: Test, env: Record<string, string>) {
  const [first, second] = await twoMachines(t, { ...BEHIND_PROXY, ...env })

  t.test('the sign-in budget is shared', async (t) => {
    const client = { 'x-forwarded-for': newClientIp() }
    const half = Math.floor(SIGN_IN_MAX / 2)
    t.same(await attempts(first.url, half, () => client), wrongPassword(half))
    t.same(await attempts(second.url, SIGN_IN_MAX - half, () => client), wrongPassword(SIGN_IN_MAX - half))
    t.equal((await signInAttempt(first.url, client)).status, 429, 'spent across both machines')
    t.equal((await signInAttempt(second.url, client)).status, 429)
  })

  t.test('a session from one machine works on the other; sign-out and revocation end it on both at once', async (t) => {
    // One browser whose requests the proxy sends to either machine: the same cookie jar against two base URLs.
    const email = `machines-${randomInt(1e9)}@example.com`
    const onFirst = browserClient(first.url)
    const signUp = await onFirst.post('/api/auth/sign-up/email', { name: 'M', email, password: 'correct horse battery' },
      { 'x-forwarded-for': newClientIp() })
    t.equal(signUp.status, 200, signUp.text)
    const cookie = (await onFirst.jar.getCookieString(first.url))
    const me = (url: string) => fetch(`${url}/api/me`, { headers: { cookie } }).then((response) => response.status)
    t.equal(await me(second.url), 200, 'valid on the other machine')

    // A second session, revoked from the first machine: refused on the second at once (no cookie cache).
    const other = browserClient(second.url)
    t.equal((await other.post('/api/auth/sign-in/email', { email, password: 'correct horse battery' })).status, 200)
    const otherCookie = await other.jar.getCookieString(second.url)
    t.equal((await onFirst.post('/api/auth/revoke-other-sessions', {})).status, 200)
    t.equal(await fetch(`${second.url}/api/me`, { headers: { cookie: otherCookie } }).then((r) => r.status), 401,
      'revoked on one machine, refused on the other')

    t.equal((await onFirst.post('/api/auth/sign-out', {})).status, 200)
    t.equal(await me(second.url), 401, 'signed out on one machine, refused on the other')
    t.equal(await me(first.url), 401)
  })

  t.test('a migration run while both serve (each deploy\'s release_command) does no harm', async (t) => {
    const email = `deploy-${randomInt(1e9)}@example.com`
    const client = browserClient(first.url)
    t.equal((await client.post('/api/auth/sign-up/email', { name: 'D', email, password: 'correct horse battery' },
      { 'x-forwarded-for': newClientIp() })).status, 200)
    const cookie = await client.jar.getCookieString(first.url)
    const statuses: number[] = []
    let serving = true
    const traffic = (async () => {
      for (let i = 0; serving; i++) {
        statuses.push(await fetch(`${[first, second][i % 2]!.url}/api/me`, { headers: { cookie } }).then((r) => r.status))
      }
    })()
    // Both machines run it at once, as two overlapping deploys would.
    const runs = await Promise.all([migrate(first.app.auth, first.app.pg), migrate(second.app.auth, second.app.pg)])
    serving = false
    await traffic
    t.same(runs, [{ applied: [] }, { applied: [] }], 'nothing to apply, nothing broken')
    t.ok(statuses.length > 0 && statuses.every((status) => status === 200), `${statuses.length} requests during the migration, all 200`)
  })
}

// Security review finding 2: a signed-in attacker guessed the password through verify-password at the catch-all's
// 100/min, unseen. Every endpoint that checks a signed-in user's password is a sign-in attempt.
t.test('every endpoint that checks a signed-in user\'s password: the sign-in budget on every machine, failures audited', async (t) => {
  const [first, second] = await twoMachines(t, BEHIND_PROXY)
  // The list is complete: every endpoint reachable over HTTP that takes `password` or `currentPassword` behind a session.
  const sessionMiddlewares = new Set<unknown>([sessionMiddleware, sensitiveSessionMiddleware, freshSessionMiddleware])
  const checking = Object.values(first.app.auth.api as Record<string, { path?: string, options?: { body?: { shape?: object }, use?: unknown[], metadata?: { SERVER_ONLY?: boolean } } }>)
    .filter((endpoint) => endpoint.path !== undefined && !endpoint.options?.metadata?.SERVER_ONLY)
    .filter((endpoint) => (endpoint.options?.use ?? []).some((middleware) => sessionMiddlewares.has(middleware)))
    .filter((endpoint) => Object.keys(endpoint.options?.body?.shape ?? {}).some((key) => key === 'password' || key === 'currentPassword'))
    .map((endpoint) => endpoint.path!)
  t.same(checking.sort(), [...PASSWORD_CHECK_PATHS].sort(), 'PASSWORD_CHECK_PATHS names every password-checking endpoint')
  const wrong = 'not my password at all'
  const bodies: Record<typeof PASSWORD_CHECK_PATHS[number], Record<string, unknown>> = {
    '/verify-password': { password: wrong },
    '/change-password': { currentPassword: wrong, newPassword: 'a brand new password 42' },
    '/delete-user': { password: wrong },
    '/two-factor/enable': { password: wrong },
    '/two-factor/disable': { password: wrong },
    '/two-factor/get-totp-uri': { password: wrong },
    '/two-factor/generate-backup-codes': { password: wrong }
  }
  for (const path of PASSWORD_CHECK_PATHS) {
    const email = `guess${path.replaceAll('/', '-')}@example.com`
    const owner = browserClient(first.url)
    const setup = { 'x-forwarded-for': newClientIp() }
    t.equal((await owner.post('/api/auth/sign-up/email', { name: 'G', email, password: 'correct horse battery' }, setup)).status, 200)
    // Two-factor enrolled, so that its endpoints get as far as the password.
    t.equal((await owner.post('/api/auth/two-factor/enable', { password: 'correct horse battery' }, setup)).status, 200)
    if (path === '/two-factor/generate-backup-codes') {
      await query(first.databaseUrl, 'UPDATE "user" SET "twoFactorEnabled" = true WHERE email = $1', [email])
    }
    const cookie = await owner.jar.getCookieString(first.url)
    const attacker = newClientIp()
    const guess = (machine: number) => fetch(`${[first, second][machine % 2]!.url}/api/auth${path}`, {
      method: 'POST',
      headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', cookie, 'x-forwarded-for': attacker },
      body: JSON.stringify(bodies[path])
    }).then(async (response) => ({ status: response.status, code: (await response.json()).code }))
    const answers = []
    for (let i = 0; i < SIGN_IN_MAX; i++) answers.push(await guess(i))
    t.same(answers, Array(SIGN_IN_MAX).fill({ status: 400, code: 'INVALID_PASSWORD' }), `${path}: ${SIGN_IN_MAX} guesses answered, on both machines`)
    t.equal((await guess(0)).status, 429, `${path}: then 429`)
    t.equal((await guess(1)).status, 429, `${path}: on the other machine too`)
    const { rows } = await query(first.databaseUrl,
      `SELECT count(*)::int AS n FROM audit_event WHERE type = 'sign_in.failed' AND "userId" = (SELECT id FROM "user" WHERE email = $1)
         AND detail->>'method' = 'password_check' AND detail->>'endpoint' = $2 AND detail->>'reason' = 'INVALID_PASSWORD'`, [email, path])
    t.equal(rows[0].n, SIGN_IN_MAX, `${path}: each wrong password audited as a failed sign-in`)
  }
})

// Suspected in the security review: our own read limits keyed on the full IPv6 address, while Better Auth groups
// IPv6 by /64, so rotating addresses within one's /64 escaped them.
t.test('our read limits count IPv6 by /64, as Better Auth does: rotating within a network buys nothing', async (t) => {
  t.equal(clientBudgetKey('2001:db8:1:2::7'), '2001:0db8:0001:0002::/64')
  t.equal(clientBudgetKey('2001:DB8:1:2:aaaa:bbbb:cccc:dddd'), '2001:0db8:0001:0002::/64')
  t.equal(clientBudgetKey('::ffff:198.51.100.7'), '198.51.100.7')
  t.equal(clientBudgetKey('198.51.100.7'), '198.51.100.7')
  const { url } = await buildTestApp(t, { listen: true, env: BEHIND_PROXY })
  const me = (ip: string) => fetch(`${url}/api/me`, { headers: { 'x-forwarded-for': ip } }).then((response) => response.status)
  const statuses: number[] = []
  for (let i = 1; i <= ROUTE_RATE_LIMIT.max; i++) statuses.push(await me(`2001:db8:${runOctet}:2::${i.toString(16)}`))
  t.same(statuses, Array(ROUTE_RATE_LIMIT.max).fill(401), 'the budget\'s worth answered')
  t.equal(await me(`2001:db8:${runOctet}:2:ffff::1`), 429, 'then another address of the same /64 is refused')
  t.equal(await me(`2001:db8:${runOctet}:3::1`), 401, 'another /64 has its own budget')
})

t.test('several machines on one database (rate limits and sessions in PostgreSQL)', async (t) => {
  await severalMachines(t, {})
})

t.test('several machines with Redis (REDIS_URL: rate limits in Redis, sessions in PostgreSQL)', async (t) => {
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  if (!await redisReachable(redisUrl)) {
    if (process.env.POND_REQUIRE_REDIS === '1') return t.fail(`no Redis at ${redisUrl}`)
    return t.plan(0, `no Redis at ${redisUrl}: set TEST_REDIS_URL, or start redis-server`)
  }
  await severalMachines(t, { REDIS_URL: redisUrl })
})
