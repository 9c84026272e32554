// The database goes away and comes back: requests fail fast with a clear 503, readiness says so, service resumes by
// itself, and nothing that answered 200 is lost. The PostgreSQL here belongs to this test, so it can stop it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../src/db/embedded-postgres.js'
import { buildTestApp, freePort, productionEnv, TRUSTED_ORIGIN } from './helpers/app.js'
import { query } from './helpers/database.js'
import { runCommand, spawnServer } from './helpers/process.js'

const quiet = { info () {}, warn () {} }

/** A PostgreSQL of this test's own, stopped and removed at teardown. */
function ownDatabase (t: Test) {
  const baseDir = mkdtempSync(join(tmpdir(), 'pond-faults-'))
  t.teardown(async () => {
    await stopEmbeddedPostgres(baseDir).catch(() => {})
    rmSync(baseDir, { recursive: true, force: true })
  })
  return {
    start: (port?: number) => startEmbeddedPostgres({ baseDir, log: quiet, port }),
    stop: () => stopEmbeddedPostgres(baseDir)
  }
}

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!await check().catch(() => false)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(100)
  }
}

const status = (url: string) => fetch(url).then((response) => response.status)

t.test('the database goes away under load and comes back', async (t) => {
  const database = ownDatabase(t)
  const { url: databaseUrl } = await database.start()
  const port = Number(new URL(databaseUrl).port)
  const { url } = await buildTestApp(t, { listen: true, env: { DATABASE_URL: databaseUrl } })

  interface Outcome { email: string, status: number, code?: string, retryAfter: string | null, ms: number }
  const outcomes: Outcome[] = []
  let running = true
  const signUp = async (email: string) => {
    const started = performance.now()
    const response = await fetch(`${url}/api/auth/sign-up/email`, {
      method: 'POST',
      headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Load', email, password: 'correct horse battery' })
    })
    const body = await response.json().catch(() => undefined) as { code?: string } | undefined
    outcomes.push({ email, status: response.status, code: body?.code, retryAfter: response.headers.get('retry-after'), ms: performance.now() - started })
  }
  // Four clients signing up one after another, as fast as the service answers.
  const workers = Array.from({ length: 4 }, async (_, worker) => {
    for (let i = 0; running; i++) await signUp(`load-${worker}-${i}@example.com`)
  })

  await waitFor('sign-ups before the outage', async () => outcomes.filter((o) => o.status === 200).length >= 10)
  await database.stop()
  const stoppedAt = outcomes.length
  await waitFor('503s during the outage', async () => outcomes.slice(stoppedAt).filter((o) => o.status === 503).length >= 10)
  t.equal(await status(`${url}/health`), 200, 'liveness answers during the outage')
  t.equal(await status(`${url}/health/ready`), 503, 'readiness reports the outage')
  const meDuringOutage = await fetch(`${url}/api/me`, { headers: { cookie: 'better-auth.session_token=forged.value' } })
  t.ok([401, 503].includes(meDuringOutage.status), `/api/me answers ${meDuringOutage.status}, not a 500 or a hang`)

  await database.start(port)
  await waitFor('readiness after the database returns', async () => await status(`${url}/health/ready`) === 200)
  const restartedAt = outcomes.length
  await waitFor('sign-ups after the outage', async () => outcomes.slice(restartedAt).filter((o) => o.status === 200).length >= 10)
  running = false
  await Promise.all(workers)

  const byStatus: Record<string, Outcome[]> = {}
  for (const outcome of outcomes) (byStatus[outcome.status] ??= []).push(outcome)
  t.comment(`sign-ups: ${outcomes.length} in all, ${Object.entries(byStatus).map(([s, list]) => `${list.length} × ${s}`).join(', ')}; ` +
    `slowest ${Math.round(Math.max(...outcomes.map((o) => o.ms)))} ms`)
  t.same(Object.keys(byStatus).sort(), ['200', '503'], 'every sign-up answered 200 or 503')
  t.ok((byStatus['503'] ?? []).every((o) => o.code === 'DATABASE_UNAVAILABLE' && o.retryAfter === '5'),
    '503s say DATABASE_UNAVAILABLE with Retry-After')
  // A generous bound: the point is that nothing waits for the database to come back.
  t.ok(outcomes.every((o) => o.ms < 10_000), 'no request hung')

  const answered = new Set((byStatus['200'] ?? []).map((o) => o.email))
  const { rows } = await query(databaseUrl,
    `SELECT u.email, count(a.id)::int AS accounts FROM "user" u LEFT JOIN account a ON a."userId" = u.id AND a."providerId" = 'credential'
     GROUP BY u.email`)
  const stored = new Map(rows.map((row) => [row.email as string, row.accounts as number]))
  t.same([...answered].filter((email) => stored.get(email) !== 1), [], 'every sign-up that answered 200 exists, with its password')
  t.same([...stored].filter(([, accounts]) => accounts !== 1).map(([email]) => email), [], 'no user exists without its password (no half-written sign-up)')
  const failedButStored = outcomes.filter((o) => o.status !== 200 && stored.has(o.email)).length
  t.comment(`${failedButStored} sign-up(s) answered 503 but were stored whole (the database went away after the write)`)
})

t.test('a server started while the database is down serves once it appears, without a restart', async (t) => {
  const database = ownDatabase(t)
  const databasePort = await freePort()
  const serverPort = await freePort()
  const { url: databaseUrl } = await database.start(databasePort)
  await database.stop()

  const env = { ...productionEnv(databaseUrl, serverPort), PATH: process.env.PATH ?? '' }
  const server = await spawnServer(t, { env, port: serverPort, readyPath: '/health' })
  t.equal(await status(`${server.url}/health`), 200, 'liveness answers')
  t.equal(await status(`${server.url}/health/ready`), 503, 'readiness does not')
  const signUpDown = await fetch(`${server.url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Early', email: 'early@example.com', password: 'correct horse battery' })
  })
  t.equal(signUpDown.status, 503)
  t.match(await signUpDown.json(), { code: 'DATABASE_UNAVAILABLE' })

  await database.start(databasePort)
  const migrated = await runCommand([process.execPath, '--import', 'tsx', 'scripts/migrate.ts'], { env })
  t.equal(migrated.code, 0, 'the release command migrates', { output: migrated.stdout + migrated.stderr })
  await waitFor('readiness', async () => await status(`${server.url}/health/ready`) === 200)
  const signUp = await fetch(`${server.url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Later', email: 'later@example.com', password: 'correct horse battery' })
  })
  t.equal(signUp.status, 200, 'the same process serves sign-ups now')
})
