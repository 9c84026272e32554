import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import envSchema from 'env-schema'
import { describeEnvErrors, envSchema as fullSchema, envSchemaOptions, migrationEnvSchema, parseTrustProxy, parseSecrets, splitOrigins, type MigrationEnv, type RawEnv, type TrustProxy, type VersionedSecret } from './schema.js'

export interface Config {
  isProduction: boolean
  port: number
  /** Where Prometheus metrics are served (GET /metrics); undefined: no metrics. */
  metricsPort?: number
  host: string
  /** The metrics server's listen address: METRICS_HOST, else HOST. On Fly `::`, where the scraper comes from. */
  metricsHost: string
  logLevel: RawEnv['LOG_LEVEL']
  /** Undefined in development without DATABASE_URL: the embedded PostgreSQL is used. */
  databaseUrl?: string
  /**
   * DATABASE_DIRECT_URL: the database itself, not a connection pooler, for migrations (Managed Postgres hands out a
   * PgBouncer URL for the app and a direct one). Undefined: migrations use databaseUrl.
   */
  directDatabaseUrl?: string
  /** Set on Fly machines; the `.internal` rewrite for `fly proxy` applies only off Fly. */
  flyAppName?: string
  /** Local state for development: generated secret, embedded PostgreSQL data. */
  dataDir: string
  auth: {
    secret: string
    /** Where the secret came from, so start-up can say so. */
    secretSource: 'env' | 'file' | 'generated'
    /**
     * BETTER_AUTH_SECRETS, current first: it signs cookies and encrypts; the others are accepted while a rotation
     * is under way. `secret` then only decrypts what was encrypted before versioned secrets were used.
     */
    secrets?: VersionedSecret[]
    baseURL: string
    /** One list for both CORS and Better Auth's `trustedOrigins`. */
    trustedOrigins: string[]
    /** Sign-in waits for a verified email address. */
    requireEmailVerification: boolean
    /** Only the providers whose client id and secret are both set. */
    socialProviders: {
      github?: OAuthClient
      google?: OAuthClient
    }
  }
  app: {
    /** Shown in emails and as the two-factor issuer. */
    name: string
    /** Where links in emails land: the frontend, one of the trusted origins. */
    frontendURL: string
  }
  mail: { transport: 'console', from: string } | { transport: 'smtp', from: string, smtpUrl: string }
  /** Where the client's address comes from: TRUST_PROXY, or Fly-Client-IP on Fly, or the socket. */
  trustProxy: TrustProxy
  /** Better Auth's rate limits; off only with RATE_LIMIT=off. */
  rateLimit: boolean
  /** Shared storage for rate-limit counters and sessions (Better Auth's secondary storage), when set. */
  redisUrl?: string
  /** Audit events older than this many days are pruned. */
  auditRetentionDays: number
}

export interface OAuthClient { clientId: string, clientSecret: string }

/** A configuration problem: `lines` has one line per problem, each naming its variable. */
export class ConfigError extends Error {
  constructor (readonly lines: string[]) {
    super(`Invalid configuration:\n${lines.map((line) => `  ${line}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** The repository (or image) root: the folder holding package.json, found from this file in src/ or dist/src/. */
export const projectRoot = findProjectRoot(dirname(fileURLToPath(import.meta.url)))

function findProjectRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      readFileSync(join(dir, 'package.json'))
      return dir
    } catch {
      if (dirname(dir) === dir) return process.cwd()
    }
  }
}

export interface LoadConfigOptions {
  /** Variables to read. Defaults to process.env. */
  env?: Record<string, string | undefined>
  /** Read `.env` from the project root (development only). */
  dotenv?: boolean
}

/** Validates the environment (as @fastify/env does in the app) and derives the configuration. */
export function loadConfig ({ env = process.env, dotenv = false }: LoadConfigOptions = {}): Config {
  return resolveConfig(validateEnv({ env, dotenv }) as RawEnv)
}

/** What `pnpm migrate` needs: the database, and the options that decide which tables Better Auth wants. */
export interface MigrationConfig extends Pick<Config, 'isProduction' | 'databaseUrl' | 'directDatabaseUrl' | 'flyAppName' | 'dataDir' | 'rateLimit' | 'redisUrl'> {}

/**
 * The configuration of a migration run, validated with migrationEnvSchema: production requires DATABASE_URL only.
 * Mail, URLs and secrets are neither required nor read.
 */
export function loadMigrationConfig ({ env = process.env, dotenv = false }: LoadConfigOptions = {}): MigrationConfig {
  const raw = validateEnv({ env, dotenv }, migrationEnvSchema) as MigrationEnv
  return {
    isProduction: raw.NODE_ENV === 'production',
    databaseUrl: raw.DATABASE_URL,
    directDatabaseUrl: raw.DATABASE_DIRECT_URL,
    flyAppName: raw.FLY_APP_NAME || undefined,
    dataDir: resolve(projectRoot, raw.DATA_DIR ?? '.data'),
    rateLimit: raw.RATE_LIMIT === 'on',
    redisUrl: raw.REDIS_URL
  }
}

export function envOptions ({ env = process.env, dotenv = false }: LoadConfigOptions = {}, schema: object = fullSchema) {
  // NODE_ENV comes only from the real environment: better-auth reads it at import, before any .env is parsed.
  const readDotenv = dotenv && env.NODE_ENV !== 'production'
  return {
    ...envSchemaOptions(schema),
    data: { ...env },
    env: false,
    dotenv: readDotenv ? { path: join(projectRoot, '.env') } : false
  }
}

/** env-schema with our options; its errors become a ConfigError with one line per problem. */
export function validateEnv (options: LoadConfigOptions, schema: object = fullSchema): RawEnv | MigrationEnv {
  const opts = envOptions(options, schema)
  try {
    return envSchema(opts) as unknown as RawEnv
  } catch (error) {
    throw toConfigError(error, opts.data)
  }
}

export function toConfigError (error: unknown, env: Record<string, unknown>): unknown {
  const errors = (error as { errors?: Parameters<typeof describeEnvErrors>[0] }).errors
  return Array.isArray(errors) ? new ConfigError(describeEnvErrors(errors, env)) : error
}

/** Turns validated variables into the configuration, filling development defaults. */
export function resolveConfig (env: RawEnv): Config {
  const isProduction = env.NODE_ENV === 'production'
  const problems = [...mailProblems(env, isProduction), ...socialProblems(env)]
  const trustedOrigins = [...new Set(splitOrigins(env.TRUSTED_ORIGINS))]
  const frontendURL = (env.FRONTEND_URL ?? trustedOrigins[0]!).replace(/\/$/, '')
  if (!trustedOrigins.includes(frontendURL)) problems.push('FRONTEND_URL must be one of TRUSTED_ORIGINS')
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT === env.PORT) {
    problems.push(`METRICS_PORT must differ from PORT (${env.PORT}): metrics are served on their own port, not the public one`)
  }
  if (problems.length > 0) throw new ConfigError(problems)

  const dataDir = resolve(projectRoot, env.DATA_DIR ?? '.data')
  // 0.0.0.0 is what Fly's proxy reaches; `::` would also open the public port to Fly's private network.
  const host = env.HOST ?? (isProduction ? '0.0.0.0' : 'localhost')
  const { secret, source } = env.BETTER_AUTH_SECRET !== undefined
    ? { secret: env.BETTER_AUTH_SECRET, source: 'env' as const }
    : developmentSecret(dataDir)
  return {
    isProduction,
    port: env.PORT,
    metricsPort: env.METRICS_PORT,
    host,
    metricsHost: env.METRICS_HOST ?? host,
    logLevel: env.LOG_LEVEL,
    databaseUrl: env.DATABASE_URL,
    directDatabaseUrl: env.DATABASE_DIRECT_URL,
    flyAppName: env.FLY_APP_NAME || undefined,
    dataDir,
    auth: {
      secret,
      secretSource: source,
      secrets: env.BETTER_AUTH_SECRETS === undefined ? undefined : parseSecrets(env.BETTER_AUTH_SECRETS),
      baseURL: (env.BETTER_AUTH_URL ?? `http://localhost:${env.PORT}`).replace(/\/$/, ''),
      trustedOrigins,
      requireEmailVerification: env.REQUIRE_EMAIL_VERIFICATION ?? isProduction,
      socialProviders: {
        github: oauthClient(env.GITHUB_CLIENT_ID, env.GITHUB_CLIENT_SECRET),
        google: oauthClient(env.GOOGLE_CLIENT_ID, env.GOOGLE_CLIENT_SECRET)
      }
    },
    app: { name: env.APP_NAME, frontendURL },
    trustProxy: env.TRUST_PROXY !== undefined
      ? parseTrustProxy(env.TRUST_PROXY)!
      : { mode: env.FLY_APP_NAME ? 'fly' : 'none' },
    rateLimit: env.RATE_LIMIT === 'on',
    redisUrl: env.REDIS_URL,
    auditRetentionDays: env.AUDIT_RETENTION_DAYS,
    mail: mailTransport(env) === 'smtp'
      ? { transport: 'smtp', smtpUrl: env.SMTP_URL!, from: env.MAIL_FROM! }
      : { transport: 'console', from: env.MAIL_FROM ?? `${env.APP_NAME} <no-reply@localhost>` }
  }
}

function mailTransport (env: RawEnv): 'console' | 'smtp' {
  return env.MAIL_TRANSPORT ?? (env.NODE_ENV === 'production' || env.SMTP_URL !== undefined ? 'smtp' : 'console')
}

function mailProblems (env: RawEnv, isProduction: boolean): string[] {
  if (mailTransport(env) === 'console') {
    // The console transport logs every link, tokens included: fine on a laptop, a leak in production.
    return isProduction ? ['MAIL_TRANSPORT=console is for development only (it writes sign-in links to the log); use smtp'] : []
  }
  // (Production already requires both in the schema.)
  return [
    ...(env.SMTP_URL === undefined ? ['SMTP_URL is required when MAIL_TRANSPORT=smtp'] : []),
    ...(env.MAIL_FROM === undefined ? ['MAIL_FROM is required when MAIL_TRANSPORT=smtp'] : [])
  ]
}

function socialProblems (env: RawEnv): string[] {
  const pairs = [['GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET'], ['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET']] as const
  return pairs.filter(([id, secret]) => (env[id] === undefined) !== (env[secret] === undefined))
    .map(([id, secret]) => `${env[id] === undefined ? id : secret} is required when ${env[id] === undefined ? secret : id} is set`)
}

function oauthClient (clientId?: string, clientSecret?: string): OAuthClient | undefined {
  return clientId !== undefined && clientSecret !== undefined ? { clientId, clientSecret } : undefined
}

/** In development a missing secret is generated once and kept, so sessions survive restarts. */
function developmentSecret (dataDir: string): { secret: string, source: 'file' | 'generated' } {
  const file = join(dataDir, 'auth-secret')
  try {
    return { secret: readFileSync(file, 'utf8').trim(), source: 'file' }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  mkdirSync(dirname(file), { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' })
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { secret: readFileSync(file, 'utf8').trim(), source: 'file' }
    throw error
  }
  return { secret, source: 'generated' }
}
