// Generators, transports and checks for test/fuzz.test.ts: requests built from the OpenAPI document with hostile
// values, sent through app.inject, node:http or a raw TCP socket, and judged by the same invariants.
import { createHash, createHmac } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'

export const SESSION_COOKIE = 'better-auth.session_token'

// ---------------------------------------------------------------------------------------------------------------
// Symbols resolved when a case is sent: the generated case stays readable and reproducible while the seed data
// (ids, tokens, session cookies) is created at run time and may be replaced after a case ends a session.

export const PLACEHOLDERS = {
  userEmail: '@@USER_EMAIL@@',
  userPassword: '@@USER_PASSWORD@@',
  userToken: '@@USER_TOKEN@@',
  victimId: '@@VICTIM_ID@@',
  victimEmail: '@@VICTIM_EMAIL@@'
} as const

/** How a case's Cookie header is made from the seed sessions. */
export type CookieSpec =
  | { kind: 'none' }
  /** The seed's live session cookie, as sign-in set it. */
  | { kind: 'valid', who: Who }
  /** The cookie of a session that was signed out before the run. */
  | { kind: 'revoked' }
  /** The live cookie cut short; `keep` is the fraction of the value kept (never the whole signature). */
  | { kind: 'truncated', who: Who, keep: number }
  /** One character of the live cookie's token or signature replaced. */
  | { kind: 'tampered', who: Who, at: number, by: string }
  /** The live session's token without its signature. */
  | { kind: 'unsigned', who: Who }
  /** A token (real or made up) signed with another secret. */
  | { kind: 'forged', realToken: boolean, token: string, secret: string }
  /** The live cookie with garbage around it: duplicates, other Better Auth cookies, odd separators. */
  | { kind: 'decorated', who: Who, extra: string, first: boolean }
  /** Any Cookie header at all. */
  | { kind: 'garbage', header: string }

export type Who = 'user' | 'admin'

/** Cookie kinds that must never authenticate anyone. */
export const INVALID_COOKIE_KINDS = new Set<CookieSpec['kind']>(['none', 'revoked', 'truncated', 'tampered', 'unsigned', 'forged', 'garbage'])

export type BodySpec =
  | { kind: 'none' }
  /** A JSON value, serialized when sent (placeholders replaced inside strings). */
  | { kind: 'json', value: unknown }
  /** Text sent as is (malformed JSON, form bodies, huge or deeply nested documents). */
  | { kind: 'text', text: string }
  /** Raw bytes (invalid UTF-8, NUL bytes). */
  | { kind: 'bytes', bytes: Uint8Array }

export interface FuzzCase {
  category: string
  /** The route template the case was built from (or 'unknown path'), for the per-route statistics. */
  route: string
  transport: 'inject' | 'http'
  method: string
  /** Path and query, percent-encoded (placeholders may appear). */
  url: string
  headers: Array<[string, string]>
  cookie: CookieSpec
  contentType?: string
  body: BodySpec
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/** Strings that have broken web services before: SQL and template metacharacters, control characters, encodings. */
export const HOSTILE_STRINGS: readonly string[] = [
  '', ' ', '  leading and trailing  ', '\t', '\n', '\r\n', '\r', '\u0000', 'a\u0000b', '\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000',
  '\u0001', '\u001b[31m', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029', '\ufeff', '\ufffd', '\uffff', '\ud800', '\udfff', 'a\ud83d',
  '😀', '👩‍👩‍👧‍👦', 'ﬀ', 'İ', 'ß', 'Ω', '\u202e', 'ａｄｍｉｎ', 'é', 'é',
  "'", '"', '`', '\\', '\\\\', '\\u0000', '\\x00', '%', '_', '%%', '%00', '%27', '%ff', '+', '&', '=', ';', ',', '/', '#', '?', '*',
  "' OR '1'='1", "' OR 1=1 --", '" OR ""="', "'; DROP TABLE \"user\"; --", "admin'--", "1; SELECT pg_sleep(5)",
  "' UNION SELECT token FROM session --", '$1', '$$', 'E\'\\x00\'', "\\'; --", 'ILIKE', '%_%',
  '${7*7}', '{{7*7}}', '#{7*7}', '<%= 7*7 %>', '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
  '../../../../etc/passwd', '..\\..\\windows\\win.ini', '/dev/zero', 'file:///etc/passwd',
  '\r\nSet-Cookie: fuzz=1', '\r\nLocation: http://evil.example', 'x\r\n\r\nHTTP/1.1 200 OK',
  'null', 'undefined', 'true', 'false', '0', '-1', '1e309', 'NaN', 'Infinity', '[]', '{}', '[object Object]',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  'http://localhost:5173', 'http://localhost:5173/', 'http://localhost:5173/ok?x=1#y', 'http://localhost:5173.evil.example/',
  'http://evil.example/', '//evil.example', '/\\evil.example', 'https:evil.example', 'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>', '/', '/relative/path', 'http://[::1]/', 'http://user:pass@localhost:5173/',
  'github', 'google', 'credential', 'email', 'admin', 'user', 'name', 'id', 'role', 'banned',
  'fuzz-user@example.com', 'FUZZ-USER@EXAMPLE.COM', ' fuzz-user@example.com ', 'fuzz-victim@example.com',
  'a@b', 'a@b.c', '@', 'a@', '@b.com', 'a@@b.com', 'a b@example.com', '"quoted"@example.com', 'a@[127.0.0.1]',
  'a@example.com\u0000', 'a@xn--80ak6aa92e.com', 'a@пример.рф',
  '000000', '123456', '12345678', 'ABCDEFGHIJ', 'abcd-efgh-ij',
  PLACEHOLDERS.userEmail, PLACEHOLDERS.userPassword, PLACEHOLDERS.userToken, PLACEHOLDERS.victimId, PLACEHOLDERS.victimEmail
]

/** Any UTF-16 code unit, lone surrogates and NUL included: what JSON escapes can deliver to the server. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n))

/**
 * Long runs of one character; sizes straddle the 64 KiB auth body limit. Runs of the characters that the log redaction
 * (withoutAddresses in src/mail/mailer.ts) once scanned quadratically stop at 8000: should that come back, each such
 * case would block for seconds, and the latency test in fuzz.test.ts (60 000 characters) reports it instead.
 */
const hugeString = fc.oneof(
  fc.tuple(fc.constantFrom('a', '😀', '%', '\\', 'é'), fc.constantFrom(256, 1024, 4096, 8000)),
  fc.tuple(fc.constantFrom('\u0000', "'", '"', ' ', '@', ','), fc.constantFrom(256, 4096, 16_000, 40_000, 66_000))
).map(([char, length]) => char.repeat(Math.ceil(length / char.length)))

/** Ordinary text with a NUL somewhere: PostgreSQL refuses U+0000 in text, so it deserves more than its share. */
const nulString = fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })).map(([head, tail]) => `${head}\u0000${tail}`)

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: nulString },
  { weight: 2, arbitrary: fc.string({ unit: codeUnit, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...HOSTILE_STRINGS), { minLength: 2, maxLength: 4 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: hugeString }
)

/** Header-safe text (what an HTTP/1.1 parser lets through): visible ASCII, space, tab and obs-text bytes. */
export const headerText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS.filter(isHeaderSafe)),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((n) => n !== 0x7f).map((n) => String.fromCharCode(n)), maxLength: 40 }),
  fc.constantFrom('a'.repeat(4000), 'é'.repeat(2000), '%'.repeat(1000), ';'.repeat(500), '='.repeat(500))
)

export function isHeaderSafe (value: string): boolean {
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(value)
}

const emailish = fc.oneof(
  { weight: 3, arbitrary: fc.emailAddress() },
  { weight: 2, arbitrary: fc.constantFrom(PLACEHOLDERS.userEmail, PLACEHOLDERS.victimEmail, 'fuzz-admin@example.com', 'FUZZ-USER@example.com') },
  { weight: 2, arbitrary: fc.tuple(hostileString, fc.constantFrom('@example.com', '@EXAMPLE.com', '', '@')).map(([local, domain]) => `${local}${domain}`) },
  { weight: 3, arbitrary: hostileString }
)

const passwordish = fc.oneof(
  { weight: 1, arbitrary: fc.constant(PLACEHOLDERS.userPassword) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 8, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(129), 'x'.repeat(10_000), '\u0000'.repeat(8), '😀'.repeat(40), 'short') },
  { weight: 4, arbitrary: hostileString }
)

const urlish = fc.oneof(
  { weight: 2, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('http://localhost:5173/', '/', 'http://localhost:5173'), hostileString).map(([base, tail]) => base + tail) },
  { weight: 4, arbitrary: hostileString }
)

const idish = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(PLACEHOLDERS.victimId, PLACEHOLDERS.userToken) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'), minLength: 32, maxLength: 32 }) },
  { weight: 4, arbitrary: hostileString }
)

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, -1, 1, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e20, 86_400, 3600)
)

/** Any JSON value, shallow: the "wrong type" for every field. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, '', [], {}, [null], { '': '' }) },
  { weight: 2, arbitrary: hostileString },
  { weight: 1, arbitrary: hostileNumber },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(JSON.parse('{"__proto__":{"fuzzPolluted":1}}'), { constructor: { prototype: { fuzzPolluted: 1 } } }) }
)

type JsonSchema = {
  type?: string
  enum?: unknown[]
  anyOf?: JsonSchema[]
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: unknown
}

/** A value for a field, picked by its schema and name: mostly plausible, often hostile, sometimes of another type. */
export function valueFor (name: string, schema: JsonSchema | undefined, depth = 0): fc.Arbitrary<unknown> {
  const plausible = plausibleValue(name, schema ?? {}, depth)
  return fc.oneof({ weight: 12, arbitrary: plausible }, { weight: 2, arbitrary: anyJson }, { weight: 1, arbitrary: fc.constant(null) })
}

function plausibleValue (name: string, schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  if (schema.anyOf !== undefined && schema.anyOf.length > 0) return fc.oneof(...schema.anyOf.map((s) => plausibleValue(name, s, depth)))
  if (schema.enum !== undefined && schema.enum.length > 0) {
    return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...schema.enum) }, { weight: 1, arbitrary: hostileString })
  }
  switch (schema.type) {
    case 'boolean': return fc.oneof(fc.boolean(), fc.constantFrom('true', 'false', 0, 1))
    case 'number': case 'integer': return fc.oneof({ weight: 3, arbitrary: hostileNumber }, { weight: 1, arbitrary: fc.constantFrom('1', '-1', 'abc', '1e999') })
    case 'array': return fc.array(plausibleValue(name, schema.items ?? {}, depth + 1), { maxLength: 4 })
    case 'object':
      if (schema.properties !== undefined && depth < 3) return objectFor(schema, depth + 1)
      return fc.dictionary(fieldName, anyJson, { maxKeys: 4 })
    default: return stringFor(name)
  }
}

const USER_FIELDS = ['name', 'email', 'emailVerified', 'image', 'role', 'banned', 'banReason', 'banExpires', 'twoFactorEnabled', 'createdAt', 'updatedAt', 'id']
const fieldName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...USER_FIELDS) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '', ' ', 'a.b', 'user.role', '$where', 'select', "a'b") },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }
)

function stringFor (name: string): fc.Arbitrary<unknown> {
  // Admin actions need a user that exists to get past "user not found".
  if (/^(userId|id)$/.test(name)) return fc.oneof({ weight: 3, arbitrary: fc.constant(PLACEHOLDERS.victimId) }, { weight: 2, arbitrary: idish })
  if (/email/i.test(name)) return emailish
  if (/password/i.test(name)) return passwordish
  if (/url|redirect|callback/i.test(name)) return urlish
  if (/token|code|^id$|Id$|state/i.test(name)) return idish
  return hostileString
}

/** An object for a schema with properties: each field present or not, extra fields sometimes. */
export function objectFor (schema: JsonSchema, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {}
  const model = Object.fromEntries(Object.entries(properties).map(([key, sub]) => [key, valueFor(key, sub, depth)]))
  return fc.tuple(
    fc.record(model, { requiredKeys: [] }),
    fc.option(fc.dictionary(fieldName, anyJson, { minKeys: 1, maxKeys: 3 }), { freq: 5 })
  ).map(([known, extra]) => ({ ...(extra ?? {}), ...known }))
}

// ---------------------------------------------------------------------------------------------------------------
// Bodies

/** Deeply nested JSON, within and beyond the auth route's 64 KiB limit. */
export const deepJson = fc.tuple(fc.constantFrom(100, 1000, 10_000, 30_000, 200_000), fc.constantFrom('array', 'object', 'mixed')).map(([depth, shape]) => {
  if (shape === 'array') return '['.repeat(depth) + ']'.repeat(depth)
  if (shape === 'object') return '{"a":'.repeat(depth) + 'null' + '}'.repeat(depth)
  return '{"a":['.repeat(depth) + '1' + ']}'.repeat(depth)
})

/** Broken JSON made from a well-formed document. */
export function malformedJson (document: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(document, fc.nat(), fc.constantFrom<(text: string, at: number) => string>(
    (text, at) => text.slice(0, at % (text.length + 1)),
    (text, at) => text.slice(0, at % (text.length + 1)) + '\u0000' + text.slice(at % (text.length + 1)),
    (text, at) => text.slice(0, at % (text.length + 1)) + '"' + text.slice(at % (text.length + 1)),
    (text, at) => text.slice(0, at % (text.length + 1)) + '\n' + text.slice(at % (text.length + 1)),
    (text) => text.replace(/"/g, "'"),
    (text) => text.replace(/}$/, ',}'),
    (text) => '\ufeff' + text,
    (text) => '/* comment */' + text,
    (text) => text + text,
    (text) => text.replace(/^{/, '{"email":1,"email":"dup",'),
    (text) => text.replace(/:/g, ': NaN, "x":'),
    () => '{"a":"\\ud800"}',
    () => '{"a":"\\u0000"}',
    () => '{"a":"\\x00"}',
    () => '{"a":undefined}',
    () => "{'a':1}",
    () => '{a:1}',
    () => '{"a":1e99999}',
    () => '{"a":-}',
    () => '[1,,2]',
    () => '\u0000',
    () => '',
    () => ' ',
    () => 'null',
    () => 'true',
    () => '0',
    () => '"string"',
    () => '[]'
  )).map(([text, at, mutate]) => mutate(text, at))
}

/** Bytes that are not UTF-8, and UTF-8 that decoders disagree on, spliced into a JSON string value. */
const BAD_UTF8: readonly number[][] = [
  [0xff], [0xfe, 0xff], [0xc0, 0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xbf], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0x00], [0x00, 0x00]
]

export const invalidUtf8Body: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.constantFrom('email', 'password', 'name', 'token', 'userId', 'callbackURL', 'newPassword', 'code'),
  fc.array(fc.oneof(fc.constantFrom(...BAD_UTF8), fc.uint8Array({ minLength: 1, maxLength: 6 }).map((bytes) => [...bytes])), { minLength: 1, maxLength: 4 }),
  fc.constantFrom('', '@example.com', 'correct horse battery')
).map(([field, chunks, suffix]) => {
  const bad = chunks.flat().filter((byte) => byte !== 0x22 && byte !== 0x5c)
  return Buffer.concat([
    Buffer.from(`{"name":"n","email":"e@example.com","password":"correct horse battery","${field}":"`),
    Buffer.from(bad),
    Buffer.from(`${suffix}"}`)
  ])
})

// ---------------------------------------------------------------------------------------------------------------
// URLs

/** Percent-encodes UTF-16 text; lone surrogates become the (invalid) three-byte sequences they would have been. */
export function percentEncode (text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    const next = text.charCodeAt(i + 1)
    let codePoint = unit
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      codePoint = 0x10000 + ((unit - 0xd800) << 10) + (next - 0xdc00)
      i++
    }
    if (codePoint < 0x80 && /[A-Za-z0-9\-._~]/.test(String.fromCharCode(codePoint))) {
      out += String.fromCharCode(codePoint)
      continue
    }
    for (const byte of utf8Bytes(codePoint)) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

function utf8Bytes (cp: number): number[] {
  if (cp < 0x80) return [cp]
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)]
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
}

/** A query or path value as a client could spell it: percent-encoded, or raw percent garbage. */
export const urlComponent = (value: fc.Arbitrary<unknown>) => fc.oneof(
  { weight: 8, arbitrary: value.map((v) => percentEncode(typeof v === 'string' ? v : JSON.stringify(v) ?? '')) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%ff', '%c0%80', '%ed%a0%80', '%00', '%0d%0a', '%2e%2e%2f', '..', '.', '+', '%2B', '%25', '&', '=', '#') }
)

/** Text that does not compress (PostgreSQL's index refused such a key of ~2.7 KB), reproducible from its seed. */
const incompressibleSegment = fc.tuple(fc.integer({ min: 100, max: 4000 }), fc.integer()).map(([length, seed]) => {
  let text = ''
  for (let i = 0; text.length < length; i++) text += createHash('sha512').update(`${seed}:${i}`).digest('base64url')
  return text.slice(0, length)
})

export const unknownPath = fc.tuple(
  fc.constantFrom('', '/api', '/api/auth', '/api/auth/admin', '/api/auth/two-factor', '/api/auth/callback', '/api/auth/reset-password', '/health', '/api/docs', '/api/docs/static', '/api/me', '/API/ME', '/api//auth'),
  fc.array(fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2f', '%2F..%2F', '%00', '%ff', '%', '%zz', '~', '', 'admin', 'sign-in', 'index.html', '..%2f..%2fpackage.json',
      'a;b', 'A'.repeat(3000), 'openapi.json', 'reference', 'callback', 'static', '%5c..%5c', '*', '@', 'sign-up%2Femail', 'get-session%00', 'get-session;x=1',
      'get-session.json', 'ok', 'error', '\\', '%E2%80%AE') },
    { weight: 2, arbitrary: hostileString.map(percentEncode) },
    { weight: 1, arbitrary: incompressibleSegment }
  ), { minLength: 1, maxLength: 4 }),
  fc.constantFrom('', '/', '?', '?a=1&a=2', '?__proto__[x]=1', '#frag', '?' + 'q=1&'.repeat(500))
).map(([prefix, segments, tail]) => `${prefix}/${segments.join('/')}${tail}`)

// ---------------------------------------------------------------------------------------------------------------
// Routes from the OpenAPI document

export interface RouteSpec {
  method: string
  /** The template, such as /api/auth/reset-password/{token}. */
  path: string
  pathParams: string[]
  query: Array<{ name: string, schema: JsonSchema, required: boolean }>
  body?: JsonSchema
}

type OpenApiDocument = { paths: Record<string, Record<string, {
  parameters?: Array<{ name: string, in: string, required?: boolean, schema?: JsonSchema }>
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> }
}>> }

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

export function routesFromOpenApi (document: OpenApiDocument): RouteSpec[] {
  const routes: RouteSpec[] = []
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!HTTP_METHODS.has(method)) continue
      const parameters = operation.parameters ?? []
      routes.push({
        method: method.toUpperCase(),
        path,
        pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]!),
        query: parameters.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema ?? {}, required: p.required === true })),
        body: operation.requestBody?.content?.['application/json']?.schema
      })
    }
  }
  return routes
}

/** A concrete URL for a route: path parameters filled, declared query parameters sometimes given, sometimes extras. */
export function urlFor (route: RouteSpec): fc.Arbitrary<string> {
  const pathValues = fc.tuple(...route.pathParams.map((name) => fc.oneof(
    { weight: 3, arbitrary: urlComponent(valueFor(name, { type: 'string' })) },
    { weight: 1, arbitrary: fc.constantFrom('github', 'google', 'credential', 'abc') }
  )))
  const queryPairs = fc.tuple(...route.query.map((param) => fc.option(fc.oneof(
    { weight: 4, arbitrary: urlComponent(valueFor(param.name, param.schema)).map((value) => [`${param.name}=${value}`]) },
    { weight: 1, arbitrary: fc.array(urlComponent(hostileString), { minLength: 2, maxLength: 3 }).map((values) => values.map((value) => `${param.name}=${value}`)) },
    { weight: 1, arbitrary: fc.constantFrom([param.name], [`${param.name}=`], [`${param.name}[]=1`], [`${param.name}[a]=1`]) }
  ), { freq: 3 })))
  const extras = fc.option(fc.array(fc.tuple(urlComponent(fieldName), urlComponent(hostileString)).map(([k, v]) => `${k}=${v}`), { maxLength: 3 }), { freq: 3 })
  const suffix = fc.oneof({ weight: 12, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('/', '//', '.json', '%00', ';x', '/..', '#x') })
  return fc.tuple(pathValues, queryPairs, extras, suffix).map(([values, pairs, extra, tail]) => {
    let i = 0
    const path = route.path.replace(/\{[^}]+\}/g, () => values[i++] as string)
    const query = [...pairs.flatMap((pair) => pair ?? []), ...(extra ?? [])]
    return path + tail + (query.length > 0 ? `?${query.join('&')}` : '')
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Headers and cookies

export const TRUSTED = 'http://localhost:5173'

export const originHeader = fc.oneof(
  { weight: 6, arbitrary: fc.constant(TRUSTED) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constantFrom('http://localhost:6666', 'null', '', 'http://localhost:5173.evil.example', 'HTTP://LOCALHOST:5173',
    'http://localhost:5173/', 'http://localhost:5173/path', 'http://localhost', 'https://localhost:5173', 'http://127.0.0.1:5173',
    'http://localhost:5173, http://evil.example', 'file://', 'http://[::1]:5173', 'http://localhost:05173') },
  { weight: 1, arbitrary: headerText }
)

export const contentTypeHeader = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=latin1',
    'APPLICATION/JSON', 'application/json;', 'application/json ; foo=bar', 'application/x-www-form-urlencoded', 'text/plain',
    'text/plain;charset=UTF-8', 'multipart/form-data; boundary=----fuzz', 'multipart/form-data', 'application/xml', 'text/html',
    'application/octet-stream', '', 'application/', '/', '*/*', 'application/json, text/plain', 'application/vnd.api+json',
    'application/jsonx', ' application/json', 'application/json\t', 'application/problem+json', 'application/csp-report') },
  { weight: 1, arbitrary: headerText }
)

const extraHeaderName = fc.constantFrom('x-forwarded-for', 'fly-client-ip', 'x-pond-client-ip', 'x-real-ip', 'forwarded', 'x-forwarded-host',
  'x-forwarded-proto', 'referer', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'authorization', 'host',
  'x-http-method-override', 'x-requested-with', 'access-control-request-method', 'access-control-request-headers', 'if-none-match',
  'range', 'expect', 'te', 'upgrade', 'x-fuzz', 'sec-fetch-site', 'sec-fetch-mode', 'x-csrf-token', 'content-language', 'content-encoding')

export const extraHeaders = fc.array(fc.tuple(extraHeaderName, fc.oneof(
  headerText,
  fc.constantFrom('127.0.0.1', '::1', '1.1.1.1, 2.2.2.2', 'unknown', '999.999.999.999', 'for=evil', 'Bearer x', 'Bearer ',
    'Basic ' + Buffer.from('a:b').toString('base64'), 'gzip', 'br', 'deflate', 'h2c', 'websocket', '100-continue', 'bytes=0-1',
    'DELETE', 'PUT', 'evil.example', 'localhost:5173', 'http://localhost:5173/', 'https')
)), { maxLength: 3 }).map((pairs) => pairs.filter(([name, value]) =>
  // Node's HTTP client would send these differently (or refuse them); the raw socket category covers them.
  !(name === 'expect' && value !== '') && !(name === 'upgrade') && !(name === 'te') && !(name === 'content-encoding')))

export const cookieSpec: fc.Arbitrary<CookieSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 6, arbitrary: fc.constantFrom<Who>('user', 'admin').map((who) => ({ kind: 'valid' as const, who })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'revoked' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncated' as const), who: fc.constantFrom<Who>('user', 'admin'), keep: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tampered' as const), who: fc.constantFrom<Who>('user', 'admin'), at: fc.double({ min: 0, max: 1, noNaN: true }), by: fc.constantFrom('A', 'z', '0', '+', '/', '-', '_', '.', '%', '=', ' ', 'é') }) },
  { weight: 1, arbitrary: fc.constantFrom<Who>('user', 'admin').map((who) => ({ kind: 'unsigned' as const, who })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forged' as const), realToken: fc.boolean(), token: fc.string({ minLength: 0, maxLength: 40 }), secret: fc.constantFrom('better-auth-secret-12345678901234567890', '', 'secret', 'test-secret-that-is-long-enough-012345678') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('decorated' as const), who: fc.constantFrom<Who>('user', 'admin'), first: fc.boolean(), extra: fc.oneof(
    fc.constantFrom(`${SESSION_COOKIE}=garbage`, `${SESSION_COOKIE}=`, `__Secure-${SESSION_COOKIE}=x.y`, 'better-auth.session_data=eyJ4IjoxfQ',
      'better-auth.session_data=' + 'A'.repeat(3000), 'better-auth.dont_remember=true.sig', 'better-auth.two_factor=x.y', 'better-auth.admin_session=x.y',
      'a=b', '=', ';;;', 'x', '$Version=1'),
    headerText.map((text) => `${SESSION_COOKIE}=${text}`)
  ) }) },
  { weight: 1, arbitrary: headerText.map((header) => ({ kind: 'garbage' as const, header })) }
)

export interface Seeds {
  user: { id: string, token: string, cookieValue: string, email: string, password: string }
  admin: { id: string, token: string, cookieValue: string }
  victim: { id: string, email: string }
  revokedCookieValue: string
  secret: string
}

/** Better Auth's signed cookie value: `<token>.<base64 HMAC-SHA256 of the token>`, percent-encoded. */
export function signedCookieValue (token: string, secret: string): string {
  return encodeURIComponent(`${token}.${createHmac('sha256', secret).update(token).digest('base64')}`)
}

/** The Cookie header for a spec, from the seeds as they are now. */
export function cookieHeader (spec: CookieSpec, seeds: Seeds): string | undefined {
  const live = (who: Who) => decodeURIComponent(seeds[who].cookieValue)
  const header = (value: string) => `${SESSION_COOKIE}=${value}`
  switch (spec.kind) {
    case 'none': return undefined
    case 'valid': return header(seeds[spec.who].cookieValue)
    case 'revoked': return header(seeds.revokedCookieValue)
    case 'truncated': {
      // Cut before the signature's last two characters: base64's final character carries unused bits, so a shorter
      // cut of only the padding could still decode to the same signature.
      const value = live(spec.who)
      return header(encodeURIComponent(value.slice(0, Math.floor(spec.keep * (value.length - 2)))))
    }
    case 'tampered': {
      const value = live(spec.who)
      // Any character but the signature's last data character and its padding (same reason as above).
      const at = Math.floor(spec.at * (value.length - 2))
      const by = value[at] === spec.by ? (spec.by === 'A' ? 'B' : 'A') : spec.by
      return header(encodeURIComponent(value.slice(0, at) + by + value.slice(at + 1)))
    }
    case 'unsigned': return header(seeds[spec.who].token)
    case 'forged': {
      const token = spec.realToken ? seeds.user.token : spec.token
      return header(signedCookieValue(token, spec.secret === seeds.secret ? seeds.secret + '!' : spec.secret))
    }
    case 'decorated': {
      const real = header(seeds[spec.who].cookieValue)
      return spec.first ? `${spec.extra}; ${real}` : `${real}; ${spec.extra}`
    }
    case 'garbage': return spec.header
  }
}

/** Cookie specs that should authenticate as `who` (the others must not authenticate). */
export function authenticatesAs (spec: CookieSpec): Who | 'maybe' | undefined {
  if (spec.kind === 'valid') return spec.who
  // A second session cookie before the real one: which one wins is the cookie parser's choice.
  if (spec.kind === 'decorated') return 'maybe'
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Sending

/** A request as sent. */
export interface Sent {
  method: string
  url: string
  headers: Record<string, string>
  payload?: Buffer
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | number | undefined>
  body: Buffer
  /** Set when no HTTP answer came: timeout, reset, unparsable bytes. */
  error?: string
}

export function substitute (text: string, seeds: Seeds): string {
  return text
    .replaceAll(PLACEHOLDERS.userEmail, seeds.user.email)
    .replaceAll(PLACEHOLDERS.userPassword, seeds.user.password)
    .replaceAll(PLACEHOLDERS.userToken, seeds.user.token)
    .replaceAll(PLACEHOLDERS.victimId, seeds.victim.id)
    .replaceAll(PLACEHOLDERS.victimEmail, seeds.victim.email)
}

/** The case as a request: method, URL, headers (cookie and content type resolved) and body bytes. */
export function materialize (fuzzCase: FuzzCase, seeds: Seeds): Sent {
  const headers: Record<string, string> = {}
  for (const [name, value] of fuzzCase.headers) headers[name] = substitute(value, seeds)
  const cookie = cookieHeader(fuzzCase.cookie, seeds)
  if (cookie !== undefined) headers.cookie = cookie
  if (fuzzCase.contentType !== undefined) headers['content-type'] = fuzzCase.contentType
  const { body } = fuzzCase
  const payload = body.kind === 'none'
    ? undefined
    : body.kind === 'bytes'
      ? Buffer.from(body.bytes)
      : Buffer.from(substitute(body.kind === 'json' ? JSON.stringify(body.value) ?? 'null' : body.text, seeds))
  return { method: fuzzCase.method, url: substitute(fuzzCase.url, seeds), headers, payload }
}

export async function sendInject (app: FastifyInstance, request: Sent): Promise<Answer> {
  const response = await app.inject({
    method: request.method as 'GET',
    url: request.url,
    headers: request.headers,
    ...(request.payload === undefined ? {} : { payload: request.payload })
  })
  return { status: response.statusCode, headers: response.headers, body: response.rawPayload }
}

export function sendHttp (port: number, agent: http.Agent, request: Sent, timeoutMs = 10_000): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false
    const done = (answer: Answer) => {
      if (!settled) {
        settled = true
        resolve(answer)
      }
    }
    let req: http.ClientRequest
    try {
      // An explicit length: without one Node sends a GET or HEAD body unframed, and the server reads it as the next request.
      const headers = request.payload === undefined ? request.headers : { ...request.headers, 'content-length': String(request.payload.length) }
      req = http.request({ host: '127.0.0.1', port, method: request.method, path: request.url, headers, agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: { ...res.headers }, body: Buffer.concat(chunks) }))
        res.on('error', (error) => done({ status: 0, headers: {}, body: Buffer.alloc(0), error: `response: ${error.message}` }))
      })
    } catch (error) {
      done({ status: 0, headers: {}, body: Buffer.alloc(0), error: `client refused to send: ${(error as Error).message}` })
      return
    }
    req.setTimeout(timeoutMs, () => {
      done({ status: 0, headers: {}, body: Buffer.alloc(0), error: `no answer within ${timeoutMs} ms` })
      req.destroy()
    })
    req.on('error', (error) => done({ status: 0, headers: {}, body: Buffer.alloc(0), error: `request: ${error.message}` }))
    req.end(request.payload)
  })
}

/**
 * Writes bytes to a fresh TCP connection and parses every HTTP/1.x response that comes back. The client half-closes
 * once it has the `expected` answers, or after 20 ms without news (a server waiting for body bytes that will never
 * come then answers the truncated request). Node ends the connection at that half-close, so an answer still being
 * computed is lost: the caller can tell by the server's log (a request dispatched but never completed).
 */
export function sendRaw (port: number, bytes: Buffer, firstMethod: string, expected: number, timeoutMs = 10_000): Promise<{ answers: Answer[], closedWithoutAnswer: boolean, error?: string, raw: Buffer }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let finished = false
    let idle: NodeJS.Timeout | undefined
    const finish = (error?: string) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      clearTimeout(idle)
      socket.destroy()
      const raw = Buffer.concat(chunks)
      const parsed = parseResponses(raw, firstMethod)
      resolve({ answers: parsed.answers, closedWithoutAnswer: raw.length === 0, error: error ?? parsed.error, raw })
    }
    const halfClose = () => {
      clearTimeout(idle)
      if (!socket.destroyed && socket.writable) socket.end()
    }
    const waitQuietly = () => {
      clearTimeout(idle)
      idle = setTimeout(halfClose, 20)
    }
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      const parsed = parseResponses(Buffer.concat(chunks), firstMethod)
      if (parsed.error === undefined && parsed.answers.filter((answer) => answer.status >= 200).length >= expected) halfClose()
      else waitQuietly()
    })
    socket.on('end', () => finish())
    socket.on('close', () => finish())
    // A reset after the server answered and closed is how some parse errors end; the answer is what counts.
    socket.on('error', (error: NodeJS.ErrnoException) => finish(chunks.length > 0 || error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : error.message))
    socket.write(bytes, waitQuietly)
  })
}

/** Parses consecutive HTTP/1.x responses (Content-Length, chunked, or until close); an answer to HEAD has no body. */
export function parseResponses (raw: Buffer, firstMethod = 'GET'): { answers: Answer[], error?: string } {
  const answers: Answer[] = []
  let offset = 0
  while (offset < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', offset)
    if (headEnd < 0) return { answers, error: `incomplete response head: ${JSON.stringify(raw.subarray(offset, offset + 200).toString('latin1'))}` }
    const [statusLine = '', ...lines] = raw.subarray(offset, headEnd).toString('latin1').split('\r\n')
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
    if (match === null) return { answers, error: `not an HTTP response: ${JSON.stringify(statusLine.slice(0, 200))}` }
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const status = Number(match[1])
    let bodyStart = headEnd + 4
    let body: Buffer
    // The answer to HEAD has no body, unless the server could not parse the request (and so did not know it was HEAD).
    // (Interim 1xx answers come before it.)
    const headWithoutBody = answers.every((answer) => answer.status < 200) && firstMethod === 'HEAD' &&
      (bodyStart >= raw.length || raw.subarray(bodyStart, bodyStart + 5).toString('latin1') === 'HTTP/')
    if (status === 204 || status === 304 || (status >= 100 && status < 200) || headWithoutBody) {
      body = Buffer.alloc(0)
    } else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = []
      for (;;) {
        const lineEnd = raw.indexOf('\r\n', bodyStart)
        if (lineEnd < 0) return { answers, error: 'incomplete chunked body' }
        const size = parseInt(raw.subarray(bodyStart, lineEnd).toString('latin1'), 16)
        if (Number.isNaN(size)) return { answers, error: 'bad chunk size in response' }
        bodyStart = lineEnd + 2
        if (size === 0) {
          const trailerEnd = raw.indexOf('\r\n', bodyStart)
          if (trailerEnd < 0) return { answers, error: 'incomplete chunked body' }
          bodyStart = trailerEnd + 2
          break
        }
        if (raw.length < bodyStart + size + 2) return { answers, error: 'incomplete chunked body' }
        parts.push(raw.subarray(bodyStart, bodyStart + size))
        bodyStart += size + 2
      }
      body = Buffer.concat(parts)
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'])
      if (raw.length < bodyStart + length) return { answers, error: 'incomplete body' }
      body = raw.subarray(bodyStart, bodyStart + length)
      bodyStart += length
    } else {
      body = raw.subarray(bodyStart)
      bodyStart = raw.length
    }
    answers.push({ status, headers, body })
    offset = bodyStart
  }
  return { answers }
}

// ---------------------------------------------------------------------------------------------------------------
// The database

export const TABLES = ['user', 'session', 'account', 'verification', 'twoFactor'] as const

export interface Fingerprint {
  /**
   * Row count and the newest row version (max xmin) per table: an insert or update makes a newer row version, a
   * delete lowers the count, so any write changes one of them.
   */
  tables: Record<(typeof TABLES)[number], { rows: number, version: string }>
  userSessionAlive: boolean
  adminSessionAlive: boolean
  adminIsAdmin: boolean
  victimExists: boolean
}

export async function fingerprint (client: pg.Client, seeds: Seeds): Promise<Fingerprint> {
  const columns = TABLES.map((table, i) =>
    `(SELECT count(*) FROM "${table}") AS n${i}, (SELECT coalesce(max(xmin::text::bigint), 0) FROM "${table}") AS v${i}`)
  const { rows: [row] } = await client.query(`SELECT ${columns.join(', ')},
    EXISTS (SELECT 1 FROM session WHERE token = $1 AND "expiresAt" > now()) AS user_alive,
    EXISTS (SELECT 1 FROM session WHERE token = $2 AND "expiresAt" > now()) AS admin_alive,
    EXISTS (SELECT 1 FROM "user" WHERE id = $3 AND role = 'admin' AND banned IS NOT TRUE) AS admin_ok,
    EXISTS (SELECT 1 FROM "user" WHERE id = $4) AS victim_exists`,
  [seeds.user.token, seeds.admin.token, seeds.admin.id, seeds.victim.id])
  return {
    tables: Object.fromEntries(TABLES.map((table, i) => [table, { rows: Number(row[`n${i}`]), version: String(row[`v${i}`]) }])) as Fingerprint['tables'],
    userSessionAlive: row.user_alive,
    adminSessionAlive: row.admin_alive,
    adminIsAdmin: row.admin_ok,
    victimExists: row.victim_exists
  }
}

/** Tables whose rows differ between two fingerprints, as `table (rows before → after)`. */
export function changedTables (before: Fingerprint, after: Fingerprint): string[] {
  return TABLES.filter((table) => before.tables[table].version !== after.tables[table].version || before.tables[table].rows !== after.tables[table].rows)
    .map((table) => `${table} (${before.tables[table].rows} → ${after.tables[table].rows} rows)`)
}

// ---------------------------------------------------------------------------------------------------------------
// Describing cases and answers in reports

/** A request for a report: short for tallies, `full` (up to 16 KiB a part) for a failure's reproduction. */
export function describeRequest (request: Sent, cookie?: CookieSpec, full = false): string {
  const max = full ? 16_384 : 300
  const headers = { ...request.headers }
  if (cookie !== undefined && headers.cookie !== undefined) headers.cookie = `<${cookie.kind}${'who' in cookie ? ` ${cookie.who}` : ''}> ${shorten(headers.cookie, full ? max : 80)}`
  return `${request.method} ${shorten(request.url, max)}\n  headers: ${shorten(JSON.stringify(headers), 2 * max)}` +
    (request.payload === undefined ? '' : `\n  body (${request.payload.length} bytes): ${shorten(JSON.stringify(request.payload.toString('latin1')), max)}`)
}

export function describeAnswer (answer: Answer): string {
  if (answer.error !== undefined) return `no answer: ${answer.error}`
  return `${answer.status} ${answer.headers['content-type'] ?? '(no content-type)'} ${shorten(JSON.stringify(answer.body.toString('utf8')), 300)}`
}

export function shorten (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`
}
