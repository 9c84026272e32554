import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import envSchema from 'env-schema'
import { ConfigError, envOptions, loadConfig } from '../src/config/index.js'
import { BETTER_AUTH_PUBLIC_SECRET } from '../src/config/schema.js'
import { runCommand } from './helpers/process.js'

const SECRET = 'a-production-secret-of-at-least-32-chars'
const production = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://pond:hunter2-password@db.example.com:5432/pond',
  BETTER_AUTH_SECRET: SECRET,
  BETTER_AUTH_URL: 'https://pond-backend.fly.dev',
  TRUSTED_ORIGINS: 'https://pond.example.com',
  SMTP_URL: 'smtps://pond:mail-password@smtp.example.com:465',
  MAIL_FROM: 'Pond <no-reply@pond.example.com>'
}
const dataDir = mkdtempSync(join(tmpdir(), 'pond-config-'))
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
const development = { DATA_DIR: dataDir }

/** The lines of the ConfigError that loading `env` throws. */
function problems (env: Record<string, string>): string[] {
  try {
    loadConfig({ env })
  } catch (error) {
    if (error instanceof ConfigError) return error.lines
    throw error
  }
  throw new Error('the configuration was accepted')
}

t.test('production requires DATABASE_URL, BETTER_AUTH_SECRET, BETTER_AUTH_URL, SMTP_URL and MAIL_FROM', async (t) => {
  t.same(problems({ NODE_ENV: 'production' }), [
    'DATABASE_URL is required when NODE_ENV=production',
    'BETTER_AUTH_SECRET is required when NODE_ENV=production',
    'BETTER_AUTH_URL is required when NODE_ENV=production',
    'SMTP_URL is required when NODE_ENV=production',
    'MAIL_FROM is required when NODE_ENV=production'
  ])
  const config = loadConfig({ env: production })
  t.equal(config.isProduction, true)
  t.equal(config.host, '0.0.0.0', 'production listens where Fly\'s proxy reaches it')
  t.equal(config.port, 3000)
  t.equal(config.auth.secretSource, 'env')
})

t.test('development needs nothing and fills defaults', async (t) => {
  const config = loadConfig({ env: development })
  t.equal(config.isProduction, false)
  t.equal(config.host, 'localhost')
  t.equal(config.auth.baseURL, 'http://localhost:3000')
  t.same(config.auth.trustedOrigins, ['http://localhost:5173'])
  t.equal(config.databaseUrl, undefined, 'no DATABASE_URL: the embedded PostgreSQL is used')
  t.equal(loadConfig({ env: { ...development, PORT: '4000' } }).auth.baseURL, 'http://localhost:4000')
  t.equal(loadConfig({ env: { ...production, HOST: '::' } }).host, '::')
})

t.test('BETTER_AUTH_SECRET: long enough, not the public default, never echoed', async (t) => {
  const [short] = problems({ ...production, BETTER_AUTH_SECRET: 'too-short-secret' })
  t.match(short, /^BETTER_AUTH_SECRET must be at least 32 characters/)
  t.notMatch(short, /too-short-secret/)
  t.match(problems({ ...production, BETTER_AUTH_SECRET: BETTER_AUTH_PUBLIC_SECRET })[0], /^BETTER_AUTH_SECRET .*public default/)
  t.match(problems({ ...development, BETTER_AUTH_SECRET: 'short' })[0], /^BETTER_AUTH_SECRET/, 'in development too')
})

t.test('development generates a secret once and keeps it under the data folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pond-secret-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const first = loadConfig({ env: { DATA_DIR: dir } })
  t.equal(first.auth.secretSource, 'generated')
  t.ok(first.auth.secret.length >= 32)
  t.equal(statSync(join(dir, 'auth-secret')).mode & 0o777, 0o600, 'readable by its owner only')
  const second = loadConfig({ env: { DATA_DIR: dir } })
  t.equal(second.auth.secretSource, 'file')
  t.equal(second.auth.secret, first.auth.secret, 'sessions survive restarts')
})

t.test('DATABASE_URL must be a PostgreSQL URL, and the message hides it', async (t) => {
  const [line] = problems({ ...production, DATABASE_URL: 'mysql://root:s3cret@db/pond' })
  t.match(line, /^DATABASE_URL must be a URL like postgres:\/\//)
  t.notMatch(line, /s3cret/)
  t.same(problems({ ...production, DATABASE_URL: 'not a url' }).length, 1)
  t.equal(loadConfig({ env: { ...production, DATABASE_URL: 'postgresql://u@h/d' } }).databaseUrl, 'postgresql://u@h/d')
})

t.test('BETTER_AUTH_URL must be an http(s) origin', async (t) => {
  t.match(problems({ ...production, BETTER_AUTH_URL: 'pond-backend.fly.dev' })[0], /^BETTER_AUTH_URL must be the public base URL/)
  t.match(problems({ ...production, BETTER_AUTH_URL: 'https://pond-backend.fly.dev/api' })[0], /^BETTER_AUTH_URL/)
  t.equal(loadConfig({ env: { ...production, BETTER_AUTH_URL: 'https://pond-backend.fly.dev/' } }).auth.baseURL, 'https://pond-backend.fly.dev')
})

t.test('TRUSTED_ORIGINS: each entry is a scheme://host[:port] origin', async (t) => {
  const accepted = loadConfig({ env: { ...development, TRUSTED_ORIGINS: 'https://pond.example.com, http://localhost:5173,https://pond.example.com' } })
  t.same(accepted.auth.trustedOrigins, ['https://pond.example.com', 'http://localhost:5173'], 'trimmed, deduplicated')
  t.same(problems({ ...development, TRUSTED_ORIGINS: 'https://*.example.com' }), ['TRUSTED_ORIGINS entry "https://*.example.com" wildcards are not allowed'])
  t.same(problems({ ...development, TRUSTED_ORIGINS: '*' }), ['TRUSTED_ORIGINS entry "*" wildcards are not allowed'])
  t.same(problems({ ...development, TRUSTED_ORIGINS: 'https://ok.example.com,https://app.example.com/login' }),
    ['TRUSTED_ORIGINS entry "https://app.example.com/login" must be scheme://host[:port] with no path (did you mean https://app.example.com?)'])
  t.same(problems({ ...development, TRUSTED_ORIGINS: 'ftp://files.example.com' }), ['TRUSTED_ORIGINS entry "ftp://files.example.com" must start with http:// or https://'])
  t.same(problems({ ...development, TRUSTED_ORIGINS: 'localhost:5173' }), ['TRUSTED_ORIGINS entry "localhost:5173" must start with http:// or https://'])
  t.same(problems({ ...development, TRUSTED_ORIGINS: ' , ' }), ['TRUSTED_ORIGINS must list at least one origin, like http://localhost:5173'])
})

t.test('PORT, LOG_LEVEL and NODE_ENV are checked', async (t) => {
  t.same(problems({ ...development, PORT: 'eighty' }), ['PORT must be integer'])
  t.same(problems({ ...development, PORT: '70000' }), ['PORT must be <= 65535'])
  t.same(problems({ ...development, LOG_LEVEL: 'loud' }), ['LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent'])
  t.match(problems({ ...development, NODE_ENV: 'test' })[0], /^NODE_ENV must be one of development, production \(NODE_ENV=test would turn off/)
})

t.test('every problem at once, one line each', async (t) => {
  const lines = problems({ NODE_ENV: 'production', BETTER_AUTH_SECRET: 'x', TRUSTED_ORIGINS: '*', PORT: '0' })
  t.equal(lines.length, 7, lines.join('\n'))
  for (const variable of ['DATABASE_URL', 'BETTER_AUTH_URL', 'SMTP_URL', 'MAIL_FROM', 'BETTER_AUTH_SECRET', 'TRUSTED_ORIGINS', 'PORT']) {
    t.ok(lines.some((line) => line.startsWith(variable + ' ')), variable)
  }
})

t.test('the app validates through @fastify/env with the same rules', async (t) => {
  const error = await buildApp({ env: { ...production, BETTER_AUTH_SECRET: 'short' } }).then(() => undefined, (e: unknown) => e)
  t.type(error, ConfigError)
  t.match((error as ConfigError).lines, [/^BETTER_AUTH_SECRET must be at least 32/])
})

t.test('.env is read in development, never in production, and the environment wins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pond-dotenv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // The real .env is at the project root; this test reads one of its own with the same options.
  t.equal(envOptions({ env: { NODE_ENV: 'production' }, dotenv: true }).dotenv, false, 'production ignores .env')
  t.match(envOptions({ env: {}, dotenv: true }).dotenv, { path: /\.env$/ })
  writeFileSync(join(dir, '.env'), 'PORT=4321\nLOG_LEVEL=debug\n')
  const raw = envSchema({ ...envOptions({ env: { LOG_LEVEL: 'warn', DATA_DIR: dir } }), dotenv: { path: join(dir, '.env') } }) as Record<string, unknown>
  t.equal(raw.PORT, 4321)
  t.equal(raw.LOG_LEVEL, 'warn')
})

t.test('the server prints one line per problem and exits 1, without a stack trace', async (t) => {
  const { code, stdout, stderr } = await runCommand([process.execPath, '--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', BETTER_AUTH_SECRET: 'short', TRUSTED_ORIGINS: 'https://ok.example.com' }
  })
  t.equal(code, 1)
  t.equal(stdout, '')
  t.same(stderr.trim().split('\n'), [
    'Invalid configuration:',
    '  DATABASE_URL is required when NODE_ENV=production',
    '  BETTER_AUTH_URL is required when NODE_ENV=production',
    '  SMTP_URL is required when NODE_ENV=production',
    '  MAIL_FROM is required when NODE_ENV=production',
    '  BETTER_AUTH_SECRET must be at least 32 characters and not Better Auth\'s public default (generate one with: openssl rand -base64 32)'
  ])
})

t.test('mail, frontend and social sign-in settings', async (t) => {
  t.same(loadConfig({ env: development }).mail, { transport: 'console', from: 'Pond <no-reply@localhost>' }, 'development logs mail')
  t.same(loadConfig({ env: production }).mail, { transport: 'smtp', smtpUrl: production.SMTP_URL, from: production.MAIL_FROM })
  t.equal(loadConfig({ env: production }).auth.requireEmailVerification, true, 'production requires a verified email')
  t.equal(loadConfig({ env: development }).auth.requireEmailVerification, false)
  t.equal(loadConfig({ env: { ...production, REQUIRE_EMAIL_VERIFICATION: 'false' } }).auth.requireEmailVerification, false)
  t.same(problems({ ...production, MAIL_TRANSPORT: 'console' }),
    ['MAIL_TRANSPORT=console is for development only (it writes sign-in links to the log); use smtp'])
  t.same(problems({ ...development, MAIL_TRANSPORT: 'smtp' }),
    ['SMTP_URL is required when MAIL_TRANSPORT=smtp', 'MAIL_FROM is required when MAIL_TRANSPORT=smtp'])
  const badSmtp = problems({ ...production, SMTP_URL: 'http://pond:mail-password@smtp.example.com' })
  t.match(badSmtp, [/^SMTP_URL must be a URL like/])
  t.notMatch(badSmtp.join('\n'), 'mail-password', 'the SMTP password is not echoed')
  t.match(problems({ ...production, MAIL_FROM: 'nobody' }), [/^MAIL_FROM must be an address/])

  t.equal(loadConfig({ env: production }).app.frontendURL, 'https://pond.example.com', 'links land on the first trusted origin')
  t.same(problems({ ...production, FRONTEND_URL: 'https://elsewhere.example.com' }), ['FRONTEND_URL must be one of TRUSTED_ORIGINS'])

  t.same(loadConfig({ env: production }).auth.socialProviders, { github: undefined, google: undefined }, 'off unless configured')
  const social = loadConfig({ env: { ...production, GITHUB_CLIENT_ID: 'gh-id', GITHUB_CLIENT_SECRET: 'gh-secret' } }).auth.socialProviders
  t.same(social, { github: { clientId: 'gh-id', clientSecret: 'gh-secret' }, google: undefined })
  t.same(problems({ ...production, GOOGLE_CLIENT_ID: 'g-id' }), ['GOOGLE_CLIENT_SECRET is required when GOOGLE_CLIENT_ID is set'])
})

t.test('every variable the service reads is documented in .env.example and the README', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const { envSchema } = await import('../src/config/schema.js')
  const { projectRoot } = await import('../src/config/index.js')
  const example = await readFile(join(projectRoot, '.env.example'), 'utf8')
  const readme = await readFile(join(projectRoot, 'README.md'), 'utf8')
  for (const variable of Object.keys(envSchema.properties)) {
    t.match(example, new RegExp(`^# ${variable}=`, 'm'), `${variable} in .env.example`)
    t.match(readme, `\`${variable}\``, `${variable} in the README`)
  }
})

t.test('TRUST_PROXY: one trust model for the client address', async (t) => {
  t.same(loadConfig({ env: development }).trustProxy, { mode: 'none' }, 'off Fly: the socket address')
  t.same(loadConfig({ env: { ...production, FLY_APP_NAME: 'pond-backend' } }).trustProxy, { mode: 'fly' }, 'on Fly: Fly-Client-IP')
  t.same(loadConfig({ env: { ...production, FLY_APP_NAME: 'pond-backend', TRUST_PROXY: 'none' } }).trustProxy, { mode: 'none' })
  t.same(loadConfig({ env: { ...development, TRUST_PROXY: 'header:X-Real-IP' } }).trustProxy, { mode: 'header', header: 'x-real-ip' })
  t.same(loadConfig({ env: { ...development, TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1' } }).trustProxy,
    { mode: 'proxies', proxies: ['10.0.0.0/8', '127.0.0.1', '::1'] })
  for (const bad of ['*', 'header:', 'header:X Real', 'everyone', '10.0.0.0/8,example.com']) {
    t.match(problems({ ...development, TRUST_PROXY: bad }), [/^TRUST_PROXY must be none, fly, header:/], bad)
  }
  t.equal(loadConfig({ env: development }).rateLimit, true, 'rate limits are on by default')
  t.equal(loadConfig({ env: { ...development, RATE_LIMIT: 'off' } }).rateLimit, false)
  t.match(problems({ ...development, REDIS_URL: 'http://redis:6379' }), [/^REDIS_URL must be a URL like redis:/])
})
