import t from 'tap'
import { createTestDatabase, query } from './helpers/database.js'
import { runCommand } from './helpers/process.js'
import { TEST_SECRET } from './helpers/app.js'

const migrateScript = [process.execPath, '--import', 'tsx', 'scripts/migrate.ts']
const envFor = (databaseUrl: string) => ({
  PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: databaseUrl,
  BETTER_AUTH_SECRET: TEST_SECRET, BETTER_AUTH_URL: 'https://pond-backend.fly.dev', TRUSTED_ORIGINS: 'https://pond.example.com',
  SMTP_URL: 'smtp://127.0.0.1:1', MAIL_FROM: 'no-reply@pond.example.com'
})
const tables = async (databaseUrl: string) => (await query(databaseUrl,
  "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")).rows.map((row) => row.table_name)

t.test('--dry-run prints the SQL and changes nothing', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const { code, stdout } = await runCommand([...migrateScript, '--dry-run'], { env: envFor(databaseUrl) })
  t.equal(code, 0)
  t.match(stdout, /Would apply \d+ change\(s\):/)
  t.match(stdout, /create table "user"/)
  t.match(stdout, /create table "session"/)
  t.same(await tables(databaseUrl), [])
})

t.test('applies the schema, says what it created, then finds nothing pending', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const first = await runCommand(migrateScript, { env: envFor(databaseUrl) })
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /Migrated:\n(.|\n)*\+ table "user"/)
  t.notMatch(first.stdout, /postgres:\/\/[^ ]*:[^*@ ]+@/, 'no password in the output')
  t.same(await tables(databaseUrl), ['account', 'audit_event', 'rateLimit', 'session', 'totp_used_code', 'twoFactor', 'user', 'verification'])

  const second = await runCommand(migrateScript, { env: envFor(databaseUrl) })
  t.equal(second.code, 0)
  t.match(second.stdout, /Nothing to migrate: the schema is up to date\./)
  const dryRun = await runCommand([...migrateScript, '--dry-run'], { env: envFor(databaseUrl) })
  t.match(dryRun.stdout, /Nothing to migrate/)
})

t.test('concurrent runs take turns under the advisory lock', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const runs = await Promise.all([1, 2, 3].map(() => runCommand(migrateScript, { env: envFor(databaseUrl) })))
  t.same(runs.map((run) => run.code), [0, 0, 0], runs.map((run) => run.stderr).join('\n'))
  t.equal(runs.filter((run) => run.stdout.includes('Migrated:')).length, 1, 'exactly one run created the schema')
  t.equal(runs.filter((run) => run.stdout.includes('Nothing to migrate')).length, 2)
  t.same(await tables(databaseUrl), ['account', 'audit_event', 'rateLimit', 'session', 'totp_used_code', 'twoFactor', 'user', 'verification'])
})

t.test('a failure exits non-zero with a clear message', async (t) => {
  const unreachable = 'postgres://pond:secret-password@127.0.0.1:1/pond'
  const { code, stderr } = await runCommand(migrateScript, { env: envFor(unreachable) })
  t.equal(code, 1)
  t.match(stderr, /^Migration failed: /)
  t.notMatch(stderr, /secret-password/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')

  const badConfig = await runCommand(migrateScript, { env: { PATH: process.env.PATH, NODE_ENV: 'production' } })
  t.equal(badConfig.code, 1)
  t.match(badConfig.stderr, /^Invalid configuration:\n {2}DATABASE_URL is required when NODE_ENV=production/)
})

t.test('a migration needs the database only: no secret, URLs or mail (what a first release machine has)', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const run = await runCommand(migrateScript, { env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: databaseUrl } })
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /Migrated:/)
  t.ok((await tables(databaseUrl)).includes('session'))
  // A bad value of something it does not use does not stop it either.
  const unrelated = await runCommand(migrateScript, {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: databaseUrl, SMTP_URL: 'not a url', BETTER_AUTH_URL: 'nope' }
  })
  t.equal(unrelated.code, 0, unrelated.stderr)
  t.match(unrelated.stdout, /Nothing to migrate/)
  // What it does use is still checked.
  const bad = await runCommand(migrateScript, { env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: 'mysql://x' } })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /^Invalid configuration:\n {2}DATABASE_URL /)
})

t.test('DATABASE_DIRECT_URL, when set, is where the migration runs (the pooled DATABASE_URL is not used)', async (t) => {
  const direct = await createTestDatabase(t)
  const run = await runCommand(migrateScript, {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: 'postgres://pooled:pw@127.0.0.1:1/unreachable', DATABASE_DIRECT_URL: direct }
  })
  t.equal(run.code, 0, run.stderr)
  t.ok((await tables(direct)).includes('session'), 'the schema is in the direct database')
  const badDirect = await runCommand(migrateScript, {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: direct, DATABASE_DIRECT_URL: 'http://nope' }
  })
  t.equal(badDirect.code, 1)
  t.match(badDirect.stderr, /DATABASE_DIRECT_URL /)
})
