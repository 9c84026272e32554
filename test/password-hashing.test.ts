// Password hashing is bounded (src/auth/password-hashing.ts): a burst of sign-ins queues or gets a clear 503, it
// never runs more hashes at once than the bound (each takes ~32 MB), and stored passwords keep Better Auth's format.
import { verifyPassword } from 'better-auth/crypto'
import t from 'tap'
import { boundedPasswordHashing, HASHING_BUSY, HASHING_SHARE_SPENT, PASSWORD_HASHING } from '../src/auth/password-hashing.js'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'

t.test('at most `concurrency` hashes run at once; past the queue\'s bound the rest are refused', async (t) => {
  const hashing = boundedPasswordHashing({ concurrency: 2, queueLimit: 3 })
  let mostActive = 0
  const sampler = setInterval(() => { mostActive = Math.max(mostActive, hashing.load.active) }, 1)
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => hashing.hash(`password number ${i}`)))
  clearInterval(sampler)
  const hashed = results.filter((result) => result.status === 'fulfilled')
  const refused = results.filter((result) => result.status === 'rejected')
  t.equal(hashed.length, 5, 'two running and three queued are hashed')
  t.equal(refused.length, 3, 'the rest are refused at once')
  t.ok(mostActive <= 2 && mostActive > 0, `never more than 2 at once (saw ${mostActive})`)
  for (const { reason } of refused) t.match(reason, { statusCode: 503, body: { code: HASHING_BUSY.code } })
  const [first] = hashed as Array<PromiseFulfilledResult<string>>
  t.ok(await verifyPassword({ hash: first!.value, password: 'password number 0' }), 'Better Auth\'s own verify accepts the hash')
  t.ok(await hashing.verify({ hash: first!.value, password: 'password number 0' }))
  t.notOk(await hashing.verify({ hash: first!.value, password: 'password number 1' }))
})

t.test('one client\'s or account\'s hashes in flight are bounded by its share', async (t) => {
  const hashing = boundedPasswordHashing({ concurrency: 1, queueLimit: 10, shareLimit: 2, shareOf: () => ['client:a', 'account:x'] })
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => hashing.hash(`password number ${i}`)))
  t.equal(results.filter((result) => result.status === 'fulfilled').length, 2, 'two hashed')
  for (const result of results.filter((result) => result.status === 'rejected')) {
    t.match(result.reason, { statusCode: 429, body: { code: HASHING_SHARE_SPENT.code } })
  }
  t.equal((await Promise.allSettled([hashing.hash('later')]))[0]!.status, 'fulfilled', 'the share is given back')
})

t.test('a sign-in burst over HTTP from many clients: every answer is clear, the excess a 503 with Retry-After', async (t) => {
  const { url } = await buildTestApp(t, { listen: true, env: { TRUST_PROXY: '127.0.0.1' } })
  let client = 0
  const post = (path: string, body: unknown) => fetch(url + path, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', 'x-forwarded-for': `198.18.${Math.floor(++client / 250)}.${client % 250 + 1}` },
    body: JSON.stringify(body)
  })
  const credentials = { email: 'burst@example.com', password: 'correct horse battery', name: 'Burst' }
  t.equal((await post('/api/auth/sign-up/email', credentials)).status, 200)

  // Twice what the bound admits (running + queued), so the queue overflows even when a busy machine lets the first
  // hashes finish while the burst is still arriving; the refused ones cost no hash. Each from its own address and
  // for its own (unknown) account, so that no share limit applies: Better Auth hashes for unknown addresses too.
  const burst = 2 * (PASSWORD_HASHING.concurrency + PASSWORD_HASHING.queueLimit) + 12
  const answers = await Promise.all(Array.from({ length: burst }, async (_, i) => {
    const response = await post('/api/auth/sign-in/email', { email: `burst-${i}@example.com`, password: credentials.password })
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() as { code?: string } }
  }))
  const checked = answers.filter((answer) => answer.status === 401)
  const busy = answers.filter((answer) => answer.status === 503)
  t.equal(checked.length + busy.length, burst, `only 401 and 503 (${JSON.stringify([...new Set(answers.map((a) => a.status))])})`)
  t.ok(checked.length >= PASSWORD_HASHING.concurrency + PASSWORD_HASHING.queueLimit, `the bound's worth was checked (${checked.length})`)
  t.ok(busy.length > 0, `the excess is refused (${busy.length})`)
  for (const answer of busy) {
    t.same(answer.body, HASHING_BUSY)
    t.equal(answer.retryAfter, '1')
  }
  t.equal((await post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })).status, 200, 'and afterwards sign-in works')
})

t.test('a sign-up burst larger than the pool: no sign-up holds a database connection while it waits to hash', async (t) => {
  const { app, url } = await buildTestApp(t, { listen: true, env: { TRUST_PROXY: '127.0.0.1' } })
  // More sign-ups than the pool has connections (10), and no more than the hashing bound admits, so none is refused.
  const burst = Math.min(30, PASSWORD_HASHING.concurrency + PASSWORD_HASHING.queueLimit)
  let mostWaiting = 0
  const sampler = setInterval(() => { mostWaiting = Math.max(mostWaiting, app.pg.waitingCount) }, 1)
  const statuses = await Promise.all(Array.from({ length: burst }, async (_, i) => {
    const response = await fetch(`${url}/api/auth/sign-up/email`, {
      method: 'POST',
      // Each from its own address, as a burst of new users is.
      headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', 'x-forwarded-for': `198.19.0.${i + 1}` },
      body: JSON.stringify({ email: `pool-${i}@example.com`, password: 'a long enough password', name: 'Pool' })
    })
    await response.arrayBuffer()
    return response.status
  }))
  clearInterval(sampler)
  t.same(statuses, Array(burst).fill(200), `all ${burst} signed up`)
  // Were connections held through the hashing queue, the 11th sign-up would wait for one (and on a slow machine
  // fail with the pool's 5 s timeout as a 503).
  t.equal(mostWaiting, 0, `no sign-up waited for a database connection (at most ${mostWaiting} did)`)
  const { rows } = await app.pg.query<{ count: number }>('select count(*)::int as count from "user" where email like \'pool-%\'')
  t.equal(rows[0]!.count, burst, 'every sign-up was written')
})

// Security review finding 9: 70 concurrent wrong /delete-user calls from one session filled the global hashing queue
// (34 × 503), and another account's sign-in got 503 too.
t.test('one client or account cannot take everyone\'s hashing: its excess gets 429, another client still signs in', async (t) => {
  const { url } = await buildTestApp(t, { listen: true, env: { TRUST_PROXY: '127.0.0.1', RATE_LIMIT: 'on' } })
  const post = (path: string, body: unknown, client: string, cookie?: string) => fetch(url + path, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', 'x-forwarded-for': client, ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body)
  })
  const attacker = await post('/api/auth/sign-up/email', { email: 'hog@example.com', password: 'correct horse battery', name: 'Hog' }, '198.51.100.1')
  const cookie = attacker.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  const victim = { email: 'victim@example.com', password: 'correct horse battery' }
  t.equal((await post('/api/auth/sign-up/email', { ...victim, name: 'Victim' }, '198.51.100.2')).status, 200)

  const flood = Promise.all(Array.from({ length: 70 }, () =>
    post('/api/auth/delete-user', { password: 'not the password' }, '198.51.100.1', cookie).then(async (response) => ({
      status: response.status, retryAfter: response.headers.get('retry-after'), code: (await response.json()).code as string
    }))))
  await new Promise((resolve) => setTimeout(resolve, 250))
  const signIn = await post('/api/auth/sign-in/email', victim, '198.51.100.3')
  const answers = await flood
  t.equal(signIn.status, 200, 'another client signs in during the flood')
  const statuses = [...new Set(answers.map((answer) => answer.status))].sort()
  t.same(statuses, [400, 429], `the flood gets 400 (wrong password) and 429 (rate limit or hashing share), never 503: ${JSON.stringify(statuses)}`)
  // Past the rate limit's 10 guesses a minute, or past its share of the hashing at once.
  for (const answer of answers.filter((a) => a.status === 429)) t.ok(Number(answer.retryAfter) > 0, 'with Retry-After')
})

t.test('change-password checks the current password before it hashes the new one', async (t) => {
  const { app, url } = await buildTestApp(t, { listen: true })
  const post = (path: string, body: unknown, cookie?: string) => fetch(url + path, {
    method: 'POST', headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify(body)
  })
  const signUp = await post('/api/auth/sign-up/email', { email: 'changer@example.com', password: 'correct horse battery', name: 'C' })
  const cookie = signUp.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  // The service's own bounded hashing, as Better Auth holds it.
  const { done } = (await app.auth.$context).options.emailAndPassword!.password as unknown as ReturnType<typeof boundedPasswordHashing>
  const before = { ...done }
  const spent = () => ({ hashes: done.hashes - before.hashes, verifications: done.verifications - before.verifications })

  const wrong = await post('/api/auth/change-password', { currentPassword: 'not my password', newPassword: 'a new password 42' }, cookie)
  t.equal(wrong.status, 400)
  t.equal((await wrong.json()).code, 'INVALID_PASSWORD')
  t.same(spent(), { hashes: 0, verifications: 1 }, 'a wrong current password costs one check, no hash of the new one')
  const right = await post('/api/auth/change-password', { currentPassword: 'correct horse battery', newPassword: 'a new password 42' }, cookie)
  t.equal(right.status, 200)
  t.same(spent(), { hashes: 1, verifications: 2 }, 'a right one, one more check and one hash')
  t.equal((await post('/api/auth/sign-in/email', { email: 'changer@example.com', password: 'a new password 42' })).status, 200, 'the new password works')
})
