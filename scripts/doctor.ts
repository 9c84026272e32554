// `pnpm preflight` (the doctor; `pnpm doctor` is pnpm's own built-in command): checks the configuration and what it
// points at, and says what to fix. Compiled to dist/scripts/doctor.js, it runs on a Fly machine with
// `fly ssh console -C "node dist/scripts/doctor.js"`, the gate of docs/DEPLOY.md.
// Exit code 1 when any check finds a problem (warnings alone exit 0). Secrets and passwords are never printed.
import { performance } from 'node:perf_hooks'
import { TLSSocket } from 'node:tls'
import type { Pool } from 'pg'
import { getDomain } from 'tldts'
import { ConfigError, loadConfig, type Config } from '../src/config/index.js'
import { maskUrl } from '../src/db/pool.js'
import { withoutAddresses } from '../src/logger.js'
import { say } from './script-database.js'

// Better Auth and the mailer load only once the configuration is valid: a bad one is reported at once.
let createAuth: typeof import('../src/auth/create-auth.js').createAuth
let pendingMigrations: typeof import('../src/auth/migrations.js').pendingMigrations
let openDatabase: typeof import('../src/db/open-database.js').openDatabase
let createPool: typeof import('../src/db/pool.js').createPool
let getCookies: typeof import('better-auth/cookies').getCookies
let nodemailer: typeof import('nodemailer').default

type Level = 'ok' | 'warning' | 'problem'
interface Finding { level: Level, check: string, message: string, fix?: string }

const findings: Finding[] = []
const report = (level: Level, check: string, message: string, fix?: string) => findings.push({ level, check, message, fix })

const TIMEOUT_MS = 5_000
const ROUND_TRIPS = 3

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig({ dotenv: process.env.NODE_ENV !== 'production' })
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    for (const line of error.lines) report('problem', 'configuration', line, 'set the variable as the README\'s configuration table says')
    return
  }
  report('ok', 'configuration', `NODE_ENV=${config.isProduction ? 'production' : 'development'}, BETTER_AUTH_URL=${config.auth.baseURL}`)

  ;[{ createAuth }, { pendingMigrations }, { openDatabase }, { createPool }, { getCookies }, { default: nodemailer }] = await Promise.all([
    import('../src/auth/create-auth.js'), import('../src/auth/migrations.js'), import('../src/db/open-database.js'),
    import('../src/db/pool.js'), import('better-auth/cookies'), import('nodemailer')
  ])

  await checkDatabase(config)
  await checkDirectDatabase(config)
  await checkMail(config)
  checkOriginsAndCookies(config)
  checkPlaceholders(config)
}

// Notices from opening the database (the .internal rewrite, the embedded server) are not findings.
const quiet = { info () {}, warn () {}, error () {} }

async function checkDatabase (config: Config) {
  let database
  try {
    database = await openDatabase(config, quiet)
  } catch (error) {
    report('problem', 'database', `could not start the development database: ${errorText(error)}`)
    return
  }
  const shown = maskUrl(database.url)
  const pool = createPool(database.url, { log: quiet, max: 1 })
  try {
    const started = performance.now()
    try {
      await pool.query('SELECT 1')
    } catch (error) {
      const proxy = database.proxyCommand
      report('problem', 'database', `cannot reach ${shown}: ${errorText(error)}`, tlsFix(error) ??
        (proxy === undefined ? '' : `keep \`${proxy}\` running in another terminal (this host is on Fly's private network); `) +
        'check DATABASE_URL (host, port, user, password, database name) and that the database is running')
      return
    }
    const connectMs = performance.now() - started
    const times: number[] = []
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const start = performance.now()
      await pool.query('SELECT 1')
      times.push(performance.now() - start)
    }
    const slowest = Math.max(...times)
    const message = `${shown} reachable (${await encryption(pool)}): connected in ${ms(connectMs)}, ` +
      `SELECT 1 round trips ${times.map(ms).join(' / ')}`
    if (slowest > 100) report('warning', 'database', message, 'the database is far away or overloaded: run it in the same region as the app')
    else report('ok', 'database', message)

    const auth = createAuth(config, pool)
    const { changes } = await pendingMigrations(auth)
    if (changes.length === 0) {
      report('ok', 'migrations', 'the schema is up to date')
    } else {
      const listed = changes.slice(0, 5).join('; ') + (changes.length > 5 ? `; and ${changes.length - 5} more` : '')
      report('problem', 'migrations', `${changes.length} pending migration change(s): ${listed}`,
        'run `pnpm migrate` (on Fly, `fly deploy` runs it as the release_command)')
    }
  } catch (error) {
    report('problem', 'database', `${shown}: ${errorText(error)}`)
  } finally {
    await pool.end().catch(() => {})
    await database.stop().catch(() => {})
  }
}

/** What to do when the connection failed over TLS (sslmode in the URL), or undefined for other failures. */
function tlsFix (error: unknown): string | undefined {
  const { code, message = '' } = error as { code?: string, message?: string }
  if (/CERT|SELF_SIGNED|ERR_TLS/.test(code ?? '') || /certificate/i.test(message)) {
    return 'the server\'s certificate was refused (sslmode=require and verify-full check it against the host name): ' +
      'use sslmode=no-verify to encrypt without checking it (docs/DEPLOY.md, "Encryption")'
  }
  if (/does not support SSL/i.test(message)) return 'the server offers no TLS: remove sslmode from the URL, or use sslmode=disable'
  return undefined
}

/** Whether this client's connection is TLS, as the socket pg holds says (through a pooler: our hop to it). */
async function encryption (pool: Pool): Promise<string> {
  const client = await pool.connect()
  try {
    const stream = (client as unknown as { connection: { stream: unknown } }).connection.stream
    return stream instanceof TLSSocket ? `encrypted, ${stream.getProtocol() ?? 'TLS'}` : 'not encrypted'
  } finally {
    client.release()
  }
}

/** Pooled URLs of Managed Postgres (pgbouncer.<cluster>.flympg.net) and PgBouncer's usual port. */
function looksPooled (url: string): boolean {
  const { hostname, port } = new URL(url)
  return hostname.startsWith('pgbouncer.') || hostname.includes('pooler') || port === '6432'
}

async function checkDirectDatabase (config: Config) {
  if (config.directDatabaseUrl === undefined) {
    if (config.databaseUrl !== undefined && looksPooled(config.databaseUrl)) {
      report('warning', 'direct database', 'DATABASE_URL looks like a pooler\'s and DATABASE_DIRECT_URL is not set: ' +
        'migrations go through the pooler (they work in one transaction, but a pooler may cut long ones)',
        'set DATABASE_DIRECT_URL to the direct URL (Managed Postgres: direct.<cluster>.flympg.net)')
    }
    return
  }
  let database
  try {
    database = await openDatabase(config, quiet, { direct: true })
  } catch (error) {
    report('problem', 'direct database', errorText(error))
    return
  }
  const shown = maskUrl(database.url)
  const pool = createPool(database.url, { log: quiet, max: 1 })
  try {
    await pool.query('SELECT 1')
    report('ok', 'direct database', `${shown} reachable (${await encryption(pool)}): migrations run there`)
  } catch (error) {
    report('problem', 'direct database', `cannot reach ${shown}: ${errorText(error)}`,
      tlsFix(error) ?? 'check DATABASE_DIRECT_URL: `pnpm migrate` and the release command use it')
  } finally {
    await pool.end().catch(() => {})
  }
}

// Domains reserved for documentation (RFC 2606, RFC 6761): fly.toml's placeholders live there.
const EXAMPLE_DOMAIN = /(^|\.)(example\.(com|net|org)|example)$/

/** In production, a value still on fly.toml's example domains has not been changed: nobody can use it. */
function checkPlaceholders (config: Config) {
  if (!config.isProduction) return
  const mailDomain = /@([^>\s]+)>?\s*$/.exec(config.mail.from)?.[1] ?? ''
  const values: Array<[string, string]> = [
    ['BETTER_AUTH_URL', new URL(config.auth.baseURL).hostname],
    ...config.auth.trustedOrigins.map((origin): [string, string] => ['TRUSTED_ORIGINS', new URL(origin).hostname]),
    ['MAIL_FROM', mailDomain]
  ]
  for (const [variable, host] of values) {
    if (EXAMPLE_DOMAIN.test(host.toLowerCase())) {
      report('problem', 'placeholders', `${variable} is still on the example domain ${host}`,
        'set it to your own domain (fly.toml [env], the CHANGE ME lines; docs/DEPLOY.md step 5)')
    }
  }
}

async function checkMail (config: Config) {
  const { mail } = config
  if (mail.transport === 'console') {
    // (The configuration already refuses it in production.)
    report('ok', 'mail', 'console transport (development): emails are written to the log')
    return
  }
  const shown = maskUrl(mail.smtpUrl)
  const transport = nodemailer.createTransport({
    url: mail.smtpUrl, connectionTimeout: TIMEOUT_MS, greetingTimeout: TIMEOUT_MS, socketTimeout: TIMEOUT_MS
  })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      transport.verify(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS + 1_000) })
    ])
    report('ok', 'mail', `SMTP server ${shown} accepted the connection${new URL(mail.smtpUrl).username ? ' and the login' : ''}`)
  } catch (error) {
    report('problem', 'mail', `SMTP server ${shown}: ${errorText(error)}`,
      'check SMTP_URL (host, port, smtps:// for port 465, user and password) and that this machine may reach it')
  } finally {
    clearTimeout(timer)
    transport.close()
  }
}

function checkOriginsAndCookies (config: Config) {
  const base = new URL(config.auth.baseURL)
  // The cookie attributes Better Auth itself derives from our options (its instance needs a pool, never used here).
  const unused = createPool('postgres://unused@localhost/unused', { log: quiet, max: 1 })
  const { attributes } = getCookies(createAuth(config, unused).options).sessionToken
  void unused.end()
  const sameSite = String(attributes.sameSite ?? 'lax').toLowerCase()
  const cookieText = `SameSite=${sameSite[0]!.toUpperCase()}${sameSite.slice(1)}${attributes.secure ? ', Secure' : ''}`
  let problems = 0

  if (config.isProduction && base.protocol === 'http:') {
    problems++
    report('problem', 'cookies', `BETTER_AUTH_URL is http://, so session cookies are set without Secure (${cookieText})`,
      'set BETTER_AUTH_URL to the https:// address users reach')
  }
  if (sameSite === 'none' && !attributes.secure) {
    problems++
    report('problem', 'cookies', 'SameSite=None cookies without Secure are refused by browsers', 'serve BETTER_AUTH_URL over https')
  }
  for (const origin of config.auth.trustedOrigins) {
    const url = new URL(origin)
    if (sameSite !== 'none' && site(url) !== site(base)) {
      problems++
      report('problem', 'origins',
        `${origin} is not on the same site as BETTER_AUTH_URL (${site(url)} vs ${site(base)}): browsers do not send ` +
        `${cookieText} cookies on its requests to ${base.origin}, so nobody can sign in from there`,
        'serve the frontend and this service under one site (like app.example.com and auth.example.com: a custom ' +
        'domain for this service), or remove the origin')
    }
    if (config.isProduction && isLocal(url.hostname)) {
      report('warning', 'origins', `${origin} is a local development origin, trusted in production`, 'remove it from TRUSTED_ORIGINS')
    } else if (config.isProduction && url.protocol === 'http:') {
      report('warning', 'origins', `${origin} is plain http in production`, 'use its https:// origin')
    }
  }
  if (config.isProduction && isLocal(base.hostname)) {
    report('warning', 'origins', `BETTER_AUTH_URL ${base.origin} is a local address in production`, 'set it to the public https:// URL')
  }
  if (problems === 0) {
    report('ok', 'origins', `${config.auth.trustedOrigins.join(', ')} on the same site as ${base.origin}; cookies ${cookieText}`)
  }
}

/** The "site" of schemeful same-site: the scheme and the registrable domain (the public suffix list, private part included). */
function site (url: URL): string {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return `${url.protocol}//${getDomain(host, { allowPrivateDomains: true }) ?? host}`
}

function isLocal (hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname.startsWith('127.') || hostname === '[::1]'
}

function ms (value: number): string {
  return `${value.toFixed(1)} ms`
}

/** An error's message without addresses (SMTP servers repeat them) and without any URL's password. */
function errorText (error: unknown): string {
  const message = error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error)
  return withoutAddresses(message.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1****@'))
}

function print (): number {
  const width = Math.max(...findings.map((finding) => finding.check.length))
  say('pond-backend doctor')
  for (const { level, check, message, fix } of findings) {
    say(`${level.padEnd(8)} ${check.padEnd(width)}  ${message}`)
    if (fix !== undefined && level !== 'ok') say(`${' '.repeat(9 + width)}  fix: ${fix}`)
  }
  const count = (level: Level) => findings.filter((finding) => finding.level === level).length
  const problems = count('problem')
  const warnings = count('warning')
  say(problems === 0 && warnings === 0
    ? 'All checks passed.'
    : `${problems} problem(s), ${warnings} warning(s).`)
  return problems > 0 ? 1 : 0
}

try {
  await main()
} catch (error) {
  report('problem', 'doctor', `stopped: ${errorText(error)}`)
}
process.exitCode = print()
