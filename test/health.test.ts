import t from 'tap'
import { migrate } from '../src/auth/migrations.js'
import { createAuth } from '../src/auth/create-auth.js'
import { createPool } from '../src/db/pool.js'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'

t.test('liveness answers without a database', async (t) => {
  const { app } = await buildTestApp(t, { migrate: false, env: { DATABASE_URL: 'postgres://pond:pw@127.0.0.1:1/pond' } })
  const live = await app.inject('/health')
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
})

t.test('readiness: 503 while the database is down, with no connection details', async (t) => {
  const { app } = await buildTestApp(t, { migrate: false, env: { DATABASE_URL: 'postgres://pond:pw-not-shown@127.0.0.1:1/pond' } })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', reason: 'database unreachable' })
  t.notMatch(ready.body, /pw-not-shown|127\.0\.0\.1|postgres:/)
})

t.test('readiness: 503 while a migration is pending, 200 once migrated', async (t) => {
  const { app } = await buildTestApp(t, { migrate: false })
  const pending = await app.inject('/health/ready')
  t.equal(pending.statusCode, 503)
  t.equal(pending.json().reason, 'migrations pending: run pnpm migrate')
  t.match(pending.json().pending, ['table "user"', 'table "session"', 'table "account"', 'table "verification"'])

  await migrate(app.auth, app.pg)
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('a migration run by another process (pnpm migrate, the release command) heals a running server', async (t) => {
  const { app, databaseUrl } = await buildTestApp(t, { migrate: false })
  const signUp = (email: string) => app.inject({
    method: 'POST',
    url: '/api/auth/sign-up/email',
    headers: { origin: TRUSTED_ORIGIN },
    payload: { email, password: 'a long enough password', name: 'Early' }
  })
  const early = await signUp('early@example.com')
  t.equal(early.statusCode, 500)
  t.same(early.json(), { code: 'INTERNAL_ERROR', message: 'Something went wrong on our side.' }, 'no details, still JSON')

  const pool = createPool(databaseUrl, { log: app.log })
  t.teardown(() => pool.end())
  await migrate(createAuth(app.config, pool), pool)
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  t.equal((await signUp('later@example.com')).statusCode, 200, 'no restart needed')
})

t.test('readiness: a migrated database', async (t) => {
  const { app } = await buildTestApp(t)
  t.equal((await app.inject('/health/ready')).statusCode, 200)
})

t.test('passing health checks write nothing to the log; a failing one says why, once, as a warning', async (t) => {
  const { app, logs } = await buildTestApp(t)
  const other = await app.inject('/api/me')
  t.equal(other.statusCode, 401)
  const before = logs.length
  t.ok(logs.some((line) => line.msg === 'request completed'), 'other requests are still logged')
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject('/health')).statusCode, 200)
    t.equal((await app.inject('/health/ready')).statusCode, 200)
  }
  t.same(logs.slice(before), [], 'ten checks, no line')

  const { app: down, logs: downLogs } = await buildTestApp(t, { migrate: false, env: { DATABASE_URL: 'postgres://pond:pw@127.0.0.1:1/pond' } })
  t.equal((await down.inject('/health/ready')).statusCode, 503)
  t.same(downLogs.filter((line) => line.msg === 'readiness: database unreachable').map((line) => line.level), [40])
})
