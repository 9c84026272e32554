import { requestContext } from '@fastify/request-context'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { LoggerOptions } from 'pino'
import type { Config } from './config/index.js'

declare module '@fastify/request-context' {
  interface RequestContextData {
    /** The request's logger: its lines carry the reqId (set by the request-id plugin). */
    log: FastifyBaseLogger
  }
}

/**
 * The logger of the request being handled, or `fallback` outside a request. For code that Fastify does not hand a
 * request (Better Auth's logger, the mailer, the audit writer), so that its lines carry the request's id too.
 */
export function requestLog<Fallback extends FastifyBaseLogger | undefined> (fallback: Fallback): FastifyBaseLogger | Fallback {
  return requestContext.get('log') ?? fallback
}

// Query parameters and path segments that carry credentials (verification and reset links, OAuth codes).
const SECRET_QUERY_KEY = /token|code|secret|password|signature|key|state/i
const SECRET_PATH = /(\/reset-password\/)[^/?]+/

/** The request URL with credential-bearing parts replaced, safe to log. */
export function redactUrl (url: string): string {
  const [path = '', query] = url.split('?', 2)
  const safePath = path.replace(SECRET_PATH, '$1[redacted]')
  if (query === undefined) return safePath
  const params = new URLSearchParams(query)
  for (const key of [...params.keys()]) if (SECRET_QUERY_KEY.test(key)) params.set(key, '[redacted]')
  return `${safePath}?${params.toString().replaceAll('%5Bredacted%5D', '[redacted]')}`
}

/** pino options for Fastify: JSON by default, pretty in a development terminal, credentials redacted. */
export function loggerOptions (
  config: Pick<Config, 'isProduction' | 'logLevel'>,
  { pretty = false }: { pretty?: boolean } = {}
): LoggerOptions {
  return {
    level: config.logLevel,
    redact: {
      paths: [
        'req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]',
        'headers.cookie', 'headers.authorization', 'headers["set-cookie"]',
        // Node attaches the raw request bytes (cookies included) to HTTP parse errors that Fastify logs at trace.
        'err.rawPacket',
        '*.password', '*.newPassword', '*.currentPassword', '*.token', '*.secret', '*.connectionString'
      ],
      censor: '[redacted]'
    },
    serializers: {
      req (req: FastifyRequest) {
        // clientIp: the trusted client address (TRUST_PROXY), the same one Better Auth sees.
        return { method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.clientIp ?? req.ip }
      }
    },
    ...(pretty && !config.isProduction
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
      : {})
  }
}

const LOGGED_TEXT_LIMIT = 2_000

/** Replaces email addresses in a text meant for the log (cut to 2000 characters first). */
export function withoutAddresses (text: string): string {
  const cut = text.length > LOGGED_TEXT_LIMIT ? `${text.slice(0, LOGGED_TEXT_LIMIT)}… [cut]` : text
  // Bounded like an address's parts (64 before the @, 255 after), so a long run without spaces stays linear.
  return cut.replace(/[^\s<>"'@,;:()[\]]{1,64}@[^\s<>"'@,;:()[\]]{1,255}/g, '[address]')
}
