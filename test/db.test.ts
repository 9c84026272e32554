import t from 'tap'
import { maskUrl, resolveDatabaseUrl } from '../src/db/pool.js'
import { buildTestApp } from './helpers/app.js'
import { adminQuery } from './helpers/database.js'

t.test('a host on Fly\'s private network (.internal, .flycast, .flympg.net) becomes 127.0.0.1 off Fly, and stays as is on Fly', async (t) => {
  const internal = 'postgres://pond:p%40ss@pond-auth-db.internal:5432/pond?sslmode=disable'
  t.same(resolveDatabaseUrl(internal, { onFly: false }), {
    url: 'postgres://pond:p%40ss@127.0.0.1:5432/pond?sslmode=disable',
    rewrittenFrom: 'pond-auth-db.internal',
    proxyCommand: 'fly proxy 5432 -a pond-auth-db'
  })
  t.same(resolveDatabaseUrl(internal, { onFly: true }), { url: internal })
  // What `fly postgres attach` writes for a cluster with a Flycast address (every new one).
  const flycast = 'postgres://pond_backend:pw@pond-auth-db.flycast:5432/pond_backend?sslmode=disable'
  t.same(resolveDatabaseUrl(flycast, { onFly: false }), {
    url: 'postgres://pond_backend:pw@127.0.0.1:5432/pond_backend?sslmode=disable',
    rewrittenFrom: 'pond-auth-db.flycast',
    proxyCommand: 'fly proxy 5432 -a pond-auth-db'
  })
  t.same(resolveDatabaseUrl(flycast, { onFly: true }), { url: flycast })
  t.same(resolveDatabaseUrl('postgres://u@top1.nearest.of.pond-auth-db.internal:6543/db', { onFly: false }), {
    url: 'postgres://u@127.0.0.1:6543/db',
    rewrittenFrom: 'top1.nearest.of.pond-auth-db.internal',
    proxyCommand: 'fly proxy 6543 -a pond-auth-db'
  }, 'a sub-name of the app and another port: the proxy command follows')
  // What `fly mpg attach` writes (the pooled URL) and the direct one: `fly mpg proxy` listens on 127.0.0.1:16380.
  const pooled = 'postgresql://fly-user:pw@pgbouncer.abc123xyz.flympg.net/fly-db'
  t.same(resolveDatabaseUrl(pooled, { onFly: false }), {
    url: 'postgresql://fly-user:pw@127.0.0.1:16380/fly-db',
    rewrittenFrom: 'pgbouncer.abc123xyz.flympg.net',
    proxyCommand: 'fly mpg proxy abc123xyz'
  })
  t.same(resolveDatabaseUrl('postgresql://fly-user:pw@direct.abc123xyz.flympg.net:5432/fly-db?sslmode=disable', { onFly: false }), {
    url: 'postgresql://fly-user:pw@127.0.0.1:16380/fly-db?sslmode=disable',
    rewrittenFrom: 'direct.abc123xyz.flympg.net',
    proxyCommand: 'fly mpg proxy abc123xyz'
  })
  t.same(resolveDatabaseUrl(pooled, { onFly: true }), { url: pooled })
  const elsewhere = 'postgres://pond@db.example.com:6543/pond'
  t.same(resolveDatabaseUrl(elsewhere, { onFly: false }), { url: elsewhere })
  t.same(resolveDatabaseUrl('postgres://pond@internal.example.com/pond', { onFly: false }),
    { url: 'postgres://pond@internal.example.com/pond' }, 'only the suffix counts')
  t.equal(maskUrl(internal), 'postgres://pond:****@pond-auth-db.internal:5432/pond?sslmode=disable')
})

t.test('off Fly the app reaches the .flycast database through 127.0.0.1, and logs that once, masked', async (t) => {
  const real = new URL((await buildTestApp(t, { migrate: false })).databaseUrl)
  const viaFly = new URL(real)
  viaFly.hostname = 'pond-auth-db.flycast'
  // A server that trusts loopback (TEST_DATABASE_URL in CI) ignores the password; the embedded one needs its own.
  if (viaFly.password === '') viaFly.password = 'proxy-password-never-logged'
  const { app, logs, rawLogs } = await buildTestApp(t, { env: { DATABASE_URL: viaFly.toString() } })
  t.equal((await app.pg.query('SELECT current_database() AS db')).rows[0].db, real.pathname.slice(1))
  const rewrites = logs.filter((line) => String(line.msg).includes('pond-auth-db.flycast is on Fly\'s private network'))
  t.equal(rewrites.length, 1)
  t.match(rewrites[0]!.database, /^postgres:\/\/postgres:\*\*\*\*@127\.0\.0\.1:/)
  t.match(rewrites[0]!.msg, `keep \`fly proxy ${real.port} -a pond-auth-db\` running`, 'names the command that makes it work')
  t.notOk(rawLogs().includes(viaFly.password), 'the password is not in the logs')
})

t.test('on Fly the .internal URL is used as is', async (t) => {
  const { app, logs } = await buildTestApp(t, {
    migrate: false,
    env: { DATABASE_URL: 'postgres://pond:secret@pond-auth-db-does-not-exist.internal:5432/pond', FLY_APP_NAME: 'pond-backend' }
  })
  t.notOk(logs.some((line) => String(line.msg).includes('private network')), 'no rewrite on Fly')
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', reason: 'database unreachable' })
  t.notMatch(ready.body, /secret|internal/, 'no connection details in the answer')
})

t.test('a dropped connection is logged and does not crash the process; the pool recovers', async (t) => {
  const { app, databaseUrl, logs } = await buildTestApp(t)
  const client = await app.pg.connect()
  client.release() // back in the pool, idle
  const name = new URL(databaseUrl).pathname.slice(1)
  await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.ok(logs.some((line) => line.msg === 'database connection lost'), 'the pool error was logged')
  t.equal((await app.pg.query('SELECT 1 AS one')).rows[0].one, 1, 'the next query opens a new connection')
  t.equal((await app.inject('/health/ready')).statusCode, 200)
})

t.test('the pool closes with the app', async (t) => {
  const { app } = await buildTestApp(t)
  await app.close()
  t.equal(app.pg.ending, true)
  await t.rejects(app.pg.query('SELECT 1'))
})
