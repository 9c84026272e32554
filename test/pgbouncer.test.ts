// Through a real PgBouncer, as Managed Postgres's pooled URL puts one in front of the database: in transaction mode
// consecutive statements of one client run on whichever server connection is free, so nothing may rely on session
// state (named prepared statements, session-level advisory locks). Session mode is checked too.
import t from 'tap'
import { buildTestApp, createMigratedDatabase, TEST_SECRET, TRUSTED_ORIGIN } from './helpers/app.js'
import { createTestDatabase, query, serverUrl } from './helpers/database.js'
import { pgbouncerMissing, startPgBouncer } from './helpers/pgbouncer.js'
import { runCommand } from './helpers/process.js'

const missing = pgbouncerMissing()
if (missing !== undefined && process.env.POND_REQUIRE_PGBOUNCER === '1') {
  t.fail(`PgBouncer is required here (POND_REQUIRE_PGBOUNCER=1): ${missing}`)
}

const migrateScript = [process.execPath, '--import', 'tsx', 'scripts/migrate.ts']
// What a release machine has: the pooled DATABASE_URL (no direct URL) and nothing about mail or URLs.
const releaseEnv = (databaseUrl: string) => ({ PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: databaseUrl, FLY_APP_NAME: 'pond-backend' })

/** Runs `count` requests, `concurrency` at a time; returns how many answered each status (errors as 'error'). */
async function load (count: number, concurrency: number, request: () => Promise<Response>) {
  const statuses = new Map<number | string, number>()
  let started = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < count) {
      started++
      const status = await request().then(async (response) => { await response.arrayBuffer(); return response.status }, () => 'error')
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
  }))
  return Object.fromEntries(statuses)
}

for (const poolMode of ['transaction', 'session'] as const) {
  t.test(`through PgBouncer in ${poolMode} mode`, { skip: missing }, async (t) => {
    // Transaction mode: fewer server connections than the app's pool (10), so consecutive statements change server
    // connections. Session mode pins one server connection per client, so the pooler must hold at least the app's
    // pool (docs/DEPLOY.md says so); otherwise requests queue in PgBouncer.
    const bouncer = await startPgBouncer(t, serverUrl(), { poolMode, poolSize: poolMode === 'transaction' ? 3 : 12 })
    const database = await createTestDatabase(t)
    const pooled = bouncer.url(database)

    await t.test('two release commands at once: both succeed, one migrates, no lock is left behind', async (t) => {
      const runs = await Promise.all([1, 2].map(() => runCommand(migrateScript, { env: releaseEnv(pooled) })))
      t.same(runs.map((run) => run.code), [0, 0], runs.map((run) => run.stdout + run.stderr).join('\n'))
      t.equal(runs.filter((run) => run.stdout.includes('Migrated:')).length, 1, 'exactly one run created the schema')
      t.equal(runs.filter((run) => run.stdout.includes('Nothing to migrate')).length, 1, 'the other found it done')
      const locks = await query(serverUrl(), "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'")
      t.equal(locks.rows[0].n, 0, 'no advisory lock held on any server connection')
      const again = await runCommand(migrateScript, { env: releaseEnv(pooled) })
      t.equal(again.code, 0, 'a third run (the next deploy) is not blocked')
      t.match(again.stdout, /Nothing to migrate/)
    })

    await t.test('concurrent session checks: every answer is 200', async (t) => {
      const { url, logs } = await buildTestApp(t, { listen: true, migrate: false, env: { DATABASE_URL: pooled } })
      const post = (path: string, body: unknown) => fetch(url + path, {
        method: 'POST', headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' }, body: JSON.stringify(body)
      })
      const credentials = { email: `${poolMode}@example.com`, password: 'correct horse battery' }
      t.equal((await post('/api/auth/sign-up/email', { ...credentials, name: poolMode })).status, 200, 'sign-up')
      const signIn = await post('/api/auth/sign-in/email', credentials)
      t.equal(signIn.status, 200, 'sign-in')
      const cookie = signIn.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')

      const me = await load(600, 25, () => fetch(`${url}/api/me`, { headers: { cookie } }))
      t.same(me, { 200: 600 }, `600 GET /api/me, 25 at a time: ${JSON.stringify(me)}`)
      const session = await load(200, 25, () => fetch(`${url}/api/auth/get-session`, { headers: { cookie } }))
      t.same(session, { 200: 200 }, `200 GET /api/auth/get-session, 25 at a time: ${JSON.stringify(session)}`)
      t.equal(logs.filter((line) => Number(line.level) >= 50).length, 0, 'no error was logged',
        { errors: logs.filter((line) => Number(line.level) >= 50).map((line) => line.msg) })
    })
  })
}

// Managed Postgres's PgBouncer offers TLS and its URLs carry no sslmode; docs/DEPLOY.md ("Encryption") says what each
// sslmode does with node-postgres. Checked here against a PgBouncer with a self-signed certificate, as the doctor
// reports it.
t.test('TLS to the pooler: sslmode is honoured, and the doctor says whether the connection is encrypted', { skip: missing }, async (t) => {
  const bouncer = await startPgBouncer(t, serverUrl(), { poolMode: 'transaction', tlsHostName: 'pgbouncer.pond.test' })
  const pooled = bouncer.url(await createMigratedDatabase(t))
  const withSslMode = (mode?: string) => {
    const url = new URL(pooled)
    if (mode !== undefined) url.searchParams.set('sslmode', mode)
    return url.toString()
  }
  const doctor = (databaseUrl: string) => runCommand(['pnpm', 'preflight'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'development', BETTER_AUTH_SECRET: TEST_SECRET, DATABASE_URL: databaseUrl }
  })
  const databaseLine = (output: string) => output.split('\n').find((line) => /^\S+\s+database\s/.test(line)) ?? output
  const [plain, noVerify, verifyFull, require] = await Promise.all([
    doctor(withSslMode()), doctor(withSslMode('no-verify')), doctor(withSslMode('verify-full')), doctor(withSslMode('require'))
  ])
  t.match(databaseLine(plain.stdout), /^ok\s+database\s.*reachable \(not encrypted\)/, 'no sslmode: node-postgres does not ask for TLS')
  t.match(databaseLine(noVerify.stdout), /^ok\s+database\s.*reachable \(encrypted, TLSv1\.[23]\)/, 'sslmode=no-verify: encrypted')
  for (const [mode, run] of [['verify-full', verifyFull], ['require', require]] as const) {
    t.match(databaseLine(run.stdout), /^problem\s+database\s+cannot reach .*self-signed certificate/, `sslmode=${mode}: the certificate is checked, and this one is refused`)
    t.match(run.stdout, /fix: the server's certificate was refused .*use sslmode=no-verify/, 'and the doctor says what to do')
  }

  const { app } = await buildTestApp(t, { migrate: false, env: { DATABASE_URL: withSslMode('no-verify') } })
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'the service runs over the encrypted pooled connection')
})
