import t from 'tap'
import { migrate } from '../src/auth/migrations.js'
import { buildTestApp } from './helpers/app.js'

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

t.test('readiness: a migrated database', async (t) => {
  const { app } = await buildTestApp(t)
  t.equal((await app.inject('/health/ready')).statusCode, 200)
})
