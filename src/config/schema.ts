// The environment the service accepts, as a JSON schema for @fastify/env (and env-schema, the validator behind it,
// for the scripts that run outside Fastify). Values are checked here; derived defaults live in ./index.ts.

// Better Auth's built-in fallback secret: public, so any cookie signed with it can be forged.
export const BETTER_AUTH_PUBLIC_SECRET = 'better-auth-secret-12345678901234567890'

export const MIN_SECRET_LENGTH = 32

export const envSchema = {
  type: 'object',
  properties: {
    NODE_ENV: { type: 'string', enum: ['development', 'production'], default: 'development' },
    PORT: { type: 'integer', minimum: 1, maximum: 65535, default: 3000 },
    METRICS_PORT: { type: 'integer', minimum: 1, maximum: 65535 },
    HOST: { type: 'string', minLength: 1 },
    METRICS_HOST: { type: 'string', minLength: 1 },
    LOG_LEVEL: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info'
    },
    DATABASE_URL: { type: 'string', format: 'postgres-url' },
    DATABASE_DIRECT_URL: { type: 'string', format: 'postgres-url' },
    BETTER_AUTH_SECRET: { type: 'string', format: 'auth-secret' },
    BETTER_AUTH_SECRETS: { type: 'string', format: 'auth-secrets' },
    BETTER_AUTH_URL: { type: 'string', format: 'base-url' },
    TRUSTED_ORIGINS: { type: 'string', format: 'origin-list', default: 'http://localhost:5173' },
    DATA_DIR: { type: 'string', minLength: 1 },
    FLY_APP_NAME: { type: 'string' },
    APP_NAME: { type: 'string', minLength: 1, maxLength: 100, default: 'Pond' },
    FRONTEND_URL: { type: 'string', format: 'base-url' },
    MAIL_TRANSPORT: { type: 'string', enum: ['console', 'smtp'] },
    SMTP_URL: { type: 'string', format: 'smtp-url' },
    MAIL_FROM: { type: 'string', format: 'mail-from' },
    REQUIRE_EMAIL_VERIFICATION: { type: 'boolean' },
    GITHUB_CLIENT_ID: { type: 'string', minLength: 1 },
    GITHUB_CLIENT_SECRET: { type: 'string', minLength: 1 },
    GOOGLE_CLIENT_ID: { type: 'string', minLength: 1 },
    GOOGLE_CLIENT_SECRET: { type: 'string', minLength: 1 },
    TRUST_PROXY: { type: 'string', format: 'trust-proxy' },
    RATE_LIMIT: { type: 'string', enum: ['on', 'off'], default: 'on' },
    REDIS_URL: { type: 'string', format: 'redis-url' },
    AUDIT_RETENTION_DAYS: { type: 'integer', minimum: 1, maximum: 36500, default: 90 }
  },
  // Development runs with zero setup; production must be told where it lives, how to sign and how to send mail.
  if: { properties: { NODE_ENV: { const: 'production' } }, required: ['NODE_ENV'] },
  then: { required: ['DATABASE_URL', 'BETTER_AUTH_SECRET', 'BETTER_AUTH_URL', 'SMTP_URL', 'MAIL_FROM'] }
} as const

/** The variables `pnpm migrate` (fly.toml's release_command) reads: the database, and what shapes the schema. */
const MIGRATION_VARIABLES = ['NODE_ENV', 'DATABASE_URL', 'DATABASE_DIRECT_URL', 'FLY_APP_NAME', 'DATA_DIR', 'REDIS_URL', 'RATE_LIMIT'] as const

/**
 * The schema for migrations alone: a migration needs the database, not mail, URLs or secrets, so a release machine
 * fails only for what it uses (and other variables, valid or not, are not its business).
 */
export const migrationEnvSchema = {
  type: 'object',
  properties: Object.fromEntries(MIGRATION_VARIABLES.map((name) => [name, envSchema.properties[name]])),
  if: envSchema.if,
  then: { required: ['DATABASE_URL'] }
}

export type MigrationEnv = Pick<RawEnv, typeof MIGRATION_VARIABLES[number]>

export interface RawEnv {
  NODE_ENV: 'development' | 'production'
  PORT: number
  METRICS_PORT?: number
  HOST?: string
  METRICS_HOST?: string
  LOG_LEVEL: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  DATABASE_URL?: string
  DATABASE_DIRECT_URL?: string
  BETTER_AUTH_SECRET?: string
  BETTER_AUTH_SECRETS?: string
  BETTER_AUTH_URL?: string
  TRUSTED_ORIGINS: string
  DATA_DIR?: string
  FLY_APP_NAME?: string
  APP_NAME: string
  FRONTEND_URL?: string
  MAIL_TRANSPORT?: 'console' | 'smtp'
  SMTP_URL?: string
  MAIL_FROM?: string
  REQUIRE_EMAIL_VERIFICATION?: boolean
  GITHUB_CLIENT_ID?: string
  GITHUB_CLIENT_SECRET?: string
  GOOGLE_CLIENT_ID?: string
  GOOGLE_CLIENT_SECRET?: string
  TRUST_PROXY?: string
  RATE_LIMIT: 'on' | 'off'
  REDIS_URL?: string
  AUDIT_RETENTION_DAYS: number
}

/** Why a value is not an acceptable origin, or undefined when it is one. */
export function originProblem (value: string): string | undefined {
  if (value === '*' || value.includes('*')) return 'wildcards are not allowed'
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'is not a URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must start with http:// or https://'
  if (url.username || url.password) return 'must not contain credentials'
  // An origin has no path, query or fragment: `new URL` adds "/" to a bare origin, so compare with its origin.
  if (value !== url.origin) return `must be scheme://host[:port] with no path (did you mean ${url.origin}?)`
  return undefined
}

/** Where the client's address comes from (see src/client-ip.ts). */
export type TrustProxy =
  | { mode: 'none' }
  | { mode: 'fly' }
  | { mode: 'header', header: string }
  | { mode: 'proxies', proxies: string[] }

const CIDR = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)(?:\/\d{1,3})?$/i

export function parseTrustProxy (value: string): TrustProxy | undefined {
  const trimmed = value.trim()
  if (trimmed === 'none' || trimmed === 'fly') return { mode: trimmed }
  if (trimmed.startsWith('header:')) {
    const header = trimmed.slice('header:'.length).trim().toLowerCase()
    return /^[a-z0-9-]+$/.test(header) ? { mode: 'header', header } : undefined
  }
  const proxies = trimmed.split(',').map((entry) => entry.trim()).filter(Boolean)
  return proxies.length > 0 && proxies.every((entry) => CIDR.test(entry)) ? { mode: 'proxies', proxies } : undefined
}

/** A secret of BETTER_AUTH_SECRETS: the first one signs and encrypts, the others are still accepted. */
export interface VersionedSecret { version: number, value: string }

/**
 * BETTER_AUTH_SECRETS in Better Auth's format, "<version>:<secret>,..." (current first), or undefined when an entry
 * is malformed, a version repeats, or a secret is shorter than MIN_SECRET_LENGTH or Better Auth's public default.
 */
export function parseSecrets (value: string): VersionedSecret[] | undefined {
  const secrets: VersionedSecret[] = []
  for (const entry of value.split(',')) {
    const colon = entry.indexOf(':')
    const version = entry.slice(0, colon).trim()
    const secret = entry.slice(colon + 1).trim()
    if (colon === -1 || !/^\d+$/.test(version) || !formats['auth-secret']!.validate(secret)) return undefined
    secrets.push({ version: Number(version), value: secret })
  }
  const versions = new Set(secrets.map((secret) => secret.version))
  return versions.size === secrets.length ? secrets : undefined
}

export function splitOrigins (value: string): string[] {
  return value.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
}

/** A URL with one of `protocols` (like 'redis:') and a host. */
function isUrlWithHost (value: string, protocols: string[]): boolean {
  try {
    const url = new URL(value)
    return protocols.includes(url.protocol) && url.hostname !== ''
  } catch {
    return false
  }
}

// Custom formats. Messages never include the value: it may hold a password or a secret.
const formats: Record<string, { validate: (value: string) => boolean, message: string }> = {
  'postgres-url': {
    validate: (value) => isUrlWithHost(value, ['postgres:', 'postgresql:']),
    message: 'must be a URL like postgres://user:password@host:5432/database'
  },
  'auth-secret': {
    validate: (value) => value.length >= MIN_SECRET_LENGTH && value !== BETTER_AUTH_PUBLIC_SECRET,
    message: `must be at least ${MIN_SECRET_LENGTH} characters and not Better Auth's public default ` +
      '(generate one with: openssl rand -base64 32)'
  },
  'auth-secrets': {
    validate: (value) => parseSecrets(value) !== undefined,
    message: 'must be "<version>:<secret>,..." with the current secret first, each version a different whole number ' +
      `and each secret at least ${MIN_SECRET_LENGTH} characters, like 2:<new secret>,1:<old secret>`
  },
  'base-url': {
    validate: (value) => {
      const trimmed = value.endsWith('/') ? value.slice(0, -1) : value
      return originProblem(trimmed) === undefined
    },
    message: 'must be the public base URL of this service, like https://pond-backend.fly.dev (no path)'
  },
  'smtp-url': {
    validate: (value) => isUrlWithHost(value, ['smtp:', 'smtps:']),
    message: 'must be a URL like smtps://user:password@smtp.example.com:465 (smtp:// for STARTTLS or plain)'
  },
  'mail-from': {
    validate: (value) => /^[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+$|^[^<>]*<[^<>@\s]+@[^<>@\s]+>$/.test(value.trim()),
    message: 'must be an address like no-reply@pond.example or "Pond <no-reply@pond.example>"'
  },
  'trust-proxy': {
    validate: (value) => parseTrustProxy(value) !== undefined,
    message: 'must be none, fly, header:<Header-Name>, or a comma-separated list of proxy addresses/CIDRs like 10.0.0.0/8,127.0.0.1'
  },
  'redis-url': {
    validate: (value) => isUrlWithHost(value, ['redis:', 'rediss:']),
    message: 'must be a URL like redis://default:password@host:6379 (rediss:// for TLS)'
  },
  'origin-list': {
    validate: (value) => splitOrigins(value).length > 0 && splitOrigins(value).every((o) => originProblem(o) === undefined),
    message: 'must be a comma-separated list of origins like https://app.example.com,http://localhost:5173'
  }
}

/** Options for @fastify/env and env-schema: our schema plus the formats it names. */
export function envSchemaOptions (schema: object = envSchema) {
  return {
    schema: structuredClone(schema) as unknown as Record<string, unknown>,
    // Options for the Ajv instance env-schema creates. No meta-schema: ours is fixed and tested, and compiling
    // Ajv's meta-schema took ~60 ms of every start (Fly starts stopped machines on demand).
    // (Cast: env-schema's README documents this object form; its type definitions only know the function form.)
    ajv: {
      customOptions: {
        meta: false,
        validateSchema: false,
        formats: Object.fromEntries(Object.entries(formats).map(([name, format]) => [name, { type: 'string', validate: format.validate }]))
      }
    } as unknown as { customOptions: <A>(ajv: A) => A }
  }
}

interface AjvError { keyword: string, instancePath: string, message?: string, params: Record<string, unknown> }

/** One line per problem, each naming the variable, for an error thrown by env-schema. */
export function describeEnvErrors (errors: AjvError[], env: Record<string, unknown>): string[] {
  const lines: string[] = []
  for (const error of errors) {
    if (error.keyword === 'if') continue // the `then` branch's own errors say it better
    const variable = error.keyword === 'required'
      ? String(error.params.missingProperty)
      : error.instancePath.replace(/^\//, '')
    let problem: string
    if (error.keyword === 'required') {
      problem = 'is required when NODE_ENV=production'
    } else if (error.keyword === 'format') {
      problem = formats[String(error.params.format)]?.message ?? 'has the wrong format'
      if (variable === 'TRUSTED_ORIGINS') problem = describeOrigins(String(env.TRUSTED_ORIGINS ?? ''))
    } else if (error.keyword === 'enum') {
      problem = `must be one of ${(error.params.allowedValues as string[]).join(', ')}`
      if (variable === 'NODE_ENV') problem += ' (NODE_ENV=test would turn off Better Auth\'s origin checks)'
    } else {
      problem = error.message ?? 'is invalid'
    }
    lines.push(`${variable} ${problem}`)
  }
  return [...new Set(lines)]
}

function describeOrigins (value: string): string {
  const origins = splitOrigins(value)
  if (origins.length === 0) return 'must list at least one origin, like http://localhost:5173'
  // Origins are not secret: naming the bad one is the quickest fix.
  const bad = origins.map((origin) => [origin, originProblem(origin)]).filter(([, problem]) => problem)
  return bad.map(([origin, problem]) => `entry "${origin}" ${problem}`).join('; ')
}
