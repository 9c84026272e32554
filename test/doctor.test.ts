// The doctor as an operator runs it, `pnpm preflight` (pnpm's own `pnpm doctor` is a built-in command that never
// reaches our script), against a real PostgreSQL and a real SMTP server.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseToml } from 'smol-toml'
import { projectRoot } from '../src/config/index.js'
import { createMigratedDatabase, TEST_SECRET, TRUSTED_ORIGIN } from './helpers/app.js'
import { createTestDatabase } from './helpers/database.js'
import { mailEnv, startMailServer } from './helpers/mail-server.js'
import { runCommand } from './helpers/process.js'

const DB_PASSWORD = 'db-password-never-printed'
const SMTP_PASSWORD = 'smtp-password-never-printed'

const doctor = (env: Record<string, string>) => runCommand(['pnpm', 'preflight'], {
  env: { PATH: process.env.PATH, HOME: process.env.HOME, BETTER_AUTH_SECRET: TEST_SECRET, ...env }
})
const flyEnv = (parseToml(readFileSync(join(projectRoot, 'fly.toml'), 'utf8')) as { env: Record<string, string> }).env

const [migrated, fresh, mail] = await Promise.all([createMigratedDatabase(t), createTestDatabase(t), startMailServer(t)])
const development = { NODE_ENV: 'development', BETTER_AUTH_URL: 'http://localhost:3000', TRUSTED_ORIGINS: TRUSTED_ORIGIN }
// Production on a database never migrated: pending migrations, a cross-site frontend and a mail server away, at once.
const production = {
  NODE_ENV: 'production',
  DATABASE_URL: fresh,
  BETTER_AUTH_URL: 'https://pond-backend.fly.dev',
  // The frontend on another site (fly.dev is a public suffix: pond.fly.dev is not pond-backend.fly.dev's site).
  TRUSTED_ORIGINS: 'https://pond.fly.dev,http://localhost:5173',
  SMTP_URL: `smtp://mailer:${SMTP_PASSWORD}@127.0.0.1:1`,
  MAIL_FROM: 'Pond <no-reply@pond.example>'
}
const [healthy, unreachable, crossSite, invalid, asShipped, pooled, managedOffFly] = await Promise.all([
  doctor({ ...development, DATABASE_URL: migrated, ...mailEnv(mail) }),
  doctor({ ...development, DATABASE_URL: `postgres://pond:${DB_PASSWORD}@127.0.0.1:1/pond` }),
  doctor(production),
  doctor({ ...development, DATABASE_URL: migrated, PORT: '4000', METRICS_PORT: '4000', TRUSTED_ORIGINS: 'https://x.example/path' }),
  // fly.toml's [env] as shipped, with the guide's secrets and a direct URL that does not answer.
  doctor({ ...flyEnv, FLY_APP_NAME: 'pond-backend', DATABASE_URL: migrated, DATABASE_DIRECT_URL: `postgres://pond:${DB_PASSWORD}@127.0.0.1:1/pond`, SMTP_URL: mail.url }),
  // Managed Postgres's pooled URL without the direct one.
  doctor({ ...development, DATABASE_URL: 'postgres://fly-user@pgbouncer.cluster.invalid:6432/fly-db' }),
  // What `fly mpg attach` writes, on a laptop where `fly mpg proxy` is not running.
  doctor({ ...development, DATABASE_URL: `postgresql://fly-user:${DB_PASSWORD}@pgbouncer.abc123xyz.flympg.net/fly-db` })
])
const lines = (output: string, level: string) => output.split('\n').filter((line) => line.startsWith(level))

t.test('a healthy configuration: exit 0, an ok line per check', async (t) => {
  t.equal(healthy.code, 0, healthy.stdout + healthy.stderr)
  for (const check of ['configuration', 'database', 'migrations', 'mail', 'origins']) {
    t.ok(lines(healthy.stdout, 'ok').some((line) => line.includes(check)), `ok ${check}`)
  }
  t.match(healthy.stdout, /SELECT 1 round trips [\d.]+ ms \/ [\d.]+ ms \/ [\d.]+ ms/, 'database latency in ms')
  t.match(healthy.stdout, /SMTP server smtp:\/\/127\.0\.0\.1:\d+ accepted the connection/, 'the SMTP server answered')
  t.equal(lines(healthy.stdout, 'problem').length, 0)
  t.match(healthy.stdout, /All checks passed\./)
})

t.test('an unreachable database: exit 1, named without its password', async (t) => {
  t.equal(unreachable.code, 1)
  const [line] = lines(unreachable.stdout, 'problem')
  t.match(line, /database\s+cannot reach postgres:\/\/pond:\*\*\*\*@127\.0\.0\.1:1\/pond: .*ECONNREFUSED/)
  t.match(unreachable.stdout, /fix: check DATABASE_URL/)
})

t.test('pending migrations, a frontend on another site with SameSite=Lax cookies, the mail server, local origins', async (t) => {
  t.equal(crossSite.code, 1)
  const problems = lines(crossSite.stdout, 'problem').join('\n')
  t.match(problems, /migrations\s+\d+ pending migration change\(s\): table "user"/)
  t.match(crossSite.stdout, /fix: run `pnpm migrate`/)
  t.match(problems, /https:\/\/pond\.fly\.dev is not on the same site as BETTER_AUTH_URL .*SameSite=Lax, Secure cookies/)
  t.match(problems, /mail\s+SMTP server smtp:\/\/mailer:\*\*\*\*@127\.0\.0\.1:1: .*ECONNREFUSED/)
  t.match(lines(crossSite.stdout, 'warning').join('\n'), /http:\/\/localhost:5173 is a local development origin, trusted in production/)
  t.ok(lines(crossSite.stdout, 'ok').some((line) => /database/.test(line)), 'the database itself is fine')
  t.notOk(lines(crossSite.stdout, 'problem').some((line) => /BETTER_AUTH_URL is http/.test(line)), 'https: cookies are Secure')
})

t.test('fly.toml as shipped: its example domains fail, and a direct URL that does not answer', async (t) => {
  t.equal(asShipped.code, 1)
  const problems = lines(asShipped.stdout, 'problem').join('\n')
  for (const variable of ['BETTER_AUTH_URL', 'TRUSTED_ORIGINS', 'MAIL_FROM']) {
    t.match(problems, new RegExp(`placeholders\\s+${variable} is still on the example domain`), variable)
  }
  t.match(asShipped.stdout, /fix: set it to your own domain/)
  t.match(problems, /direct database\s+cannot reach postgres:\/\/pond:\*\*\*\*@127\.0\.0\.1:1\/pond/)
  t.notMatch(problems, /origins/, 'the shipped placeholders are one site: no cookie problem')
  t.match(lines(asShipped.stdout, 'ok').join('\n'), /database\s+postgres:.* reachable \(not encrypted\)/, 'says whether the connection is encrypted')
})

t.test('a pooler\'s URL without DATABASE_DIRECT_URL: a warning that names the variable', async (t) => {
  t.match(lines(pooled.stdout, 'warning').join('\n'), /direct database\s+DATABASE_URL looks like a pooler's and DATABASE_DIRECT_URL is not set/)
})

t.test('Managed Postgres off Fly without its proxy: the doctor names the command to run', async (t) => {
  t.equal(managedOffFly.code, 1)
  t.match(lines(managedOffFly.stdout, 'problem').join('\n'), /database\s+cannot reach postgresql:\/\/fly-user:\*\*\*\*@127\.0\.0\.1:16380\/fly-db/)
  t.match(managedOffFly.stdout, /fix: keep `fly mpg proxy abc123xyz` running/)
})

t.test('`pnpm preflight` runs our doctor, `pnpm doctor` does not', async (t) => {
  t.match(healthy.stdout, /pond-backend doctor/)
  const builtin = await runCommand(['pnpm', 'doctor'], { env: { PATH: process.env.PATH, HOME: process.env.HOME } })
  t.notMatch(builtin.stdout + builtin.stderr, /pond-backend doctor/, 'pnpm 12\'s built-in doctor, whatever the configuration')
})

t.test('an invalid configuration: one line per variable, and nothing else checked', async (t) => {
  t.equal(invalid.code, 1)
  t.match(invalid.stdout, /problem\s+configuration\s+TRUSTED_ORIGINS entry "https:\/\/x\.example\/path"/)
  t.notMatch(invalid.stdout, /database/)
})

t.test('no secret in any output', async (t) => {
  for (const run of [healthy, unreachable, crossSite, invalid, asShipped, pooled, managedOffFly]) {
    const output = run.stdout + run.stderr
    for (const secret of [TEST_SECRET, DB_PASSWORD, SMTP_PASSWORD]) t.notOk(output.includes(secret), `no ${secret.slice(0, 6)}…`)
  }
})
