// Password hashing is bounded (src/auth/password-hashing.ts): a burst of sign-ins queues or gets a clear 503, it
// never runs more hashes at once than the bound (each takes ~32 MB), and stored passwords keep Better Auth's format.
import { verifyPassword } from 'better-auth/crypto'
import t from 'tap'
import { boundedPasswordHashing, HASHING_BUSY, PASSWORD_HASHING } from '../src/auth/password-hashing.js'
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

t.test('a sign-in burst over HTTP: every answer is 200 or a clear 503 with Retry-After', async (t) => {
  const { url } = await buildTestApp(t, { listen: true })
  const credentials = { email: 'burst@example.com', password: 'correct horse battery', name: 'Burst' }
  const post = (path: string, body: unknown) => fetch(url + path, {
    method: 'POST', headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  t.equal((await post('/api/auth/sign-up/email', credentials)).status, 200)

  // Twice what the bound admits (running + queued), so the queue overflows even when a busy machine lets the first
  // hashes finish while the burst is still arriving; the refused ones cost no hash.
  const burst = 2 * (PASSWORD_HASHING.concurrency + PASSWORD_HASHING.queueLimit) + 12
  const answers = await Promise.all(Array.from({ length: burst }, async () => {
    const response = await post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() as { code?: string } }
  }))
  const ok = answers.filter((answer) => answer.status === 200)
  const busy = answers.filter((answer) => answer.status === 503)
  t.equal(ok.length + busy.length, burst, `only 200 and 503 (${JSON.stringify([...new Set(answers.map((a) => a.status))])})`)
  t.ok(ok.length >= PASSWORD_HASHING.concurrency + PASSWORD_HASHING.queueLimit, `the bound's worth signed in (${ok.length})`)
  t.ok(busy.length > 0, `the excess is refused (${busy.length})`)
  for (const answer of busy) {
    t.same(answer.body, HASHING_BUSY)
    t.equal(answer.retryAfter, '1')
  }
  t.equal((await post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })).status, 200, 'and afterwards sign-in works')
})

t.test('a sign-up burst larger than the pool: no sign-up holds a database connection while it waits to hash', async (t) => {
  const { app, url } = await buildTestApp(t, { listen: true })
  // More sign-ups than the pool has connections (10), and no more than the hashing bound admits, so none is refused.
  const burst = Math.min(30, PASSWORD_HASHING.concurrency + PASSWORD_HASHING.queueLimit)
  let mostWaiting = 0
  const sampler = setInterval(() => { mostWaiting = Math.max(mostWaiting, app.pg.waitingCount) }, 1)
  const statuses = await Promise.all(Array.from({ length: burst }, async (_, i) => {
    const response = await fetch(`${url}/api/auth/sign-up/email`, {
      method: 'POST',
      headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
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
