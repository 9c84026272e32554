// Property-based fuzzing of every route (ours and Better Auth's, from /api/openapi.json) plus unknown paths.
//
// Categories: structured requests through app.inject and over real HTTP (hostile values from each operation's schema,
// malformed and deeply nested JSON, invalid UTF-8, wrong types, huge and empty strings, SQL metacharacters, odd
// headers, methods and content types); session cookies (forged, truncated, tampered, unsigned, replayed after sign-out)
// against routes that say who is signed in; raw bytes over TCP (what fetch and node:http refuse to send: NUL and
// invalid bytes in the request line and headers, header injection, bad framing, truncated bodies); and a sweep of
// every route with every method.
//
// Invariants, for every case: no 5xx; every 4xx is JSON with a stable UPPER_SNAKE `code`; no stack trace or database
// error text in an error; no row written by a rejected request (row count and newest row version of "user", session,
// account, verification and "twoFactor", before and after each case; cases run one at a time); no answer slower than
// 3 s; no prototype pollution; a forged cookie never authenticates; and after the run the server still answers
// GET /health over the network, with no unhandled rejection.
//
// Reproducible: a fixed seed unless FUZZ_SEED is set. FUZZ_RUNS scales the generated cases (default 4000, about 30 s;
// the method sweep comes on top). A failure prints the shrunk request, the answer and the invariant it broke.
//
// Violations of a kind found earlier and since fixed in src/ (see KNOWN) are tallied and must stay at 0; anything else
// fails the test at once.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import fc from 'fast-check'
import pg from 'pg'
import t, { type Test } from 'tap'
import { buildTestApp, TEST_SECRET, TRUSTED_ORIGIN } from './helpers/app.js'
import {
  anyJson, authenticatesAs, changedTables, contentTypeHeader, cookieHeader, cookieSpec, deepJson, describeAnswer, describeRequest,
  extraHeaders, fingerprint, headerText, INVALID_COOKIE_KINDS, invalidUtf8Body, isHeaderSafe, malformedJson, materialize, objectFor,
  originHeader, percentEncode, routesFromOpenApi, SESSION_COOKIE, sendHttp, sendInject, sendRaw, shorten, signedCookieValue, unknownPath,
  urlFor, type Answer, type BodySpec, type CookieSpec, type Fingerprint, type FuzzCase, type RouteSpec, type Seeds, type Sent
} from './helpers/fuzz.js'

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 20_261_126
const RUNS = process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : 4000
const share = (fraction: number) => Math.max(1, Math.round(RUNS * fraction))

// The file runs RUNS cases one at a time: longer than tap's default 120 s per file when the suite's other files share the CPU.
t.setTimeout(300_000)
const startedAt = performance.now()
const { app, url, databaseUrl, logs } = await buildTestApp(t, { listen: true, env: { RATE_LIMIT: 'off' } })
const port = Number(new URL(url).port)
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
t.teardown(() => agent.destroy())

// Requests the server is still handling. A raw request's bytes may carry a valid request that the server dispatched and
// whose connection then closed (the bytes after it were malformed): its handler still runs, and may still write, after
// the client has its answer. Cases wait for these before the database is compared.
const inFlight = new Set<http.ServerResponse>()
app.server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
  // (Fastify's listener ran first and may already have answered.)
  if (response.writableEnded) return
  inFlight.add(response)
  // A request whose body never fully arrived never reaches a handler.
  response.on('close', () => { if (!request.complete) inFlight.delete(response) })
  const end = response.end.bind(response) as (...args: unknown[]) => http.ServerResponse
  response.end = ((...args: unknown[]) => {
    inFlight.delete(response)
    return end(...args)
  }) as typeof response.end
})
/** Waits until every dispatched request has been answered (at most 5 s); tells whether one was still running. */
async function quiesce (): Promise<boolean> {
  const busy = inFlight.size > 0
  for (let waited = 0; inFlight.size > 0 && waited < 5000; waited += 2) await new Promise((resolve) => setTimeout(resolve, 2))
  inFlight.clear()
  return busy
}

const db = new pg.Client({ connectionString: databaseUrl })
db.on('error', () => {})
await db.connect()
t.teardown(() => db.end().catch(() => {}))

// Where a 500 comes from: our error handler logs the error (with its SQLSTATE `code` when PostgreSQL refused a value);
// Better Auth's router, when it handles an error itself, prints it with console.error('# SERVER_ERROR: ', error).
// Both are collected per case; the console ones are kept out of the output.
const serverErrors: Array<{ code?: string, message: string }> = []
type Mark = { console: number, logs: number }
const mark = (): Mark => ({ console: serverErrors.length, logs: logs.length })
function errorsSince (from: Mark): Array<{ code?: string, message: string }> {
  const logged = logs.slice(from.logs).filter((line) => Number(line.level) >= 50 && typeof line.err === 'object' && line.err !== null)
    .map((line) => {
      const err = line.err as { code?: unknown, message?: unknown }
      return { code: typeof err.code === 'string' ? err.code : undefined, message: String(err.message ?? line.msg) }
    })
  return [...serverErrors.slice(from.console), ...logged]
}
const consoleError = console.error
console.error = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].startsWith('# SERVER_ERROR')) {
    const error = args[1] as { code?: unknown, message?: unknown } | undefined
    serverErrors.push({ code: typeof error?.code === 'string' ? error.code : undefined, message: String(error?.message ?? error) })
    return
  }
  consoleError(...args)
}
t.teardown(() => { console.error = consoleError })

const crashes: string[] = []
const onRejection = (reason: unknown) => { crashes.push(`unhandledRejection: ${(reason as Error)?.stack ?? String(reason)}`) }
const onException = (error: Error) => { crashes.push(`uncaughtException: ${error.stack ?? error.message}`) }
process.on('unhandledRejection', onRejection)
process.on('uncaughtException', onException)
t.teardown(() => {
  process.off('unhandledRejection', onRejection)
  process.off('uncaughtException', onException)
})

// ---------------------------------------------------------------------------------------------------------------
// Seed data: a user, an admin, a victim for admin actions, and a signed-out session

const ORIGIN = { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' }

async function signUp (email: string, password: string) {
  const response = await app.inject({ method: 'POST', url: '/api/auth/sign-up/email', headers: ORIGIN, payload: { name: 'Fuzz', email, password } })
  if (response.statusCode !== 200) throw new Error(`seed sign-up failed: ${response.statusCode} ${response.body}`)
  return { id: response.json().user.id as string, ...sessionFrom(response.headers['set-cookie']) }
}

function sessionFrom (setCookie: string | string[] | undefined) {
  const line = [setCookie ?? []].flat().find((cookie) => cookie.startsWith(`${SESSION_COOKIE}=`))
  if (line === undefined) throw new Error('no session cookie set')
  const cookieValue = line.slice(SESSION_COOKIE.length + 1).split(';')[0]!
  return { cookieValue, token: decodeURIComponent(cookieValue).split('.')[0]! }
}

const USER = { email: 'fuzz-user@example.com', password: 'correct horse battery staple' }
const user = await signUp(USER.email, USER.password)
const admin = await signUp('fuzz-admin@example.com', 'another correct horse battery')
await db.query('UPDATE "user" SET role = \'admin\' WHERE id = $1', [admin.id])
const victim = await signUp('fuzz-victim@example.com', 'a third correct horse battery')
const signIn = await app.inject({ method: 'POST', url: '/api/auth/sign-in/email', headers: ORIGIN, payload: USER })
const revoked = sessionFrom(signIn.headers['set-cookie'])
await app.inject({ method: 'POST', url: '/api/auth/sign-out', headers: { ...ORIGIN, cookie: `${SESSION_COOKIE}=${revoked.cookieValue}` }, payload: {} })

const seeds: Seeds = {
  user: { ...user, ...USER },
  admin,
  victim: { id: victim.id, email: 'fuzz-victim@example.com' },
  revokedCookieValue: revoked.cookieValue,
  secret: TEST_SECRET
}

/** A new session for a seed user, written directly (no password hash: a case may end a seed's session often). */
async function mintSession (who: 'user' | 'admin') {
  const token = randomBytes(24).toString('base64url').slice(0, 32)
  await db.query(`INSERT INTO session (id, token, "userId", "expiresAt", "createdAt", "updatedAt", "ipAddress", "userAgent")
    VALUES ($1, $2, $3, now() + interval '7 days', now(), now(), '127.0.0.1', 'fuzz')`, [randomBytes(16).toString('hex'), token, seeds[who].id])
  seeds[who].token = token
  seeds[who].cookieValue = signedCookieValue(token, TEST_SECRET)
}

const openapi = (await app.inject({ method: 'GET', url: '/api/openapi.json' })).json()
const documented = routesFromOpenApi(openapi)
// Served but hidden from the document: the document itself, its reference pages and Better Auth's own.
const hidden: RouteSpec[] = ['/api/openapi.json', '/api/docs', '/api/docs/static/index.html', '/api/docs/json', '/api/auth/reference', '/api/auth/open-api/generate-schema']
  .map((path) => ({ method: 'GET', path, pathParams: [], query: [] }))
const routes = [...documented, ...hidden]

// Every await of the setup happens before the first t.test(): tap ends the file once its subtests are done, and a
// subtest that finishes before a later top-level await returns would end it early.
let current = await fingerprint(db, seeds)

const me = (cookie?: string) => app.inject({ method: 'GET', url: '/api/me', headers: cookie === undefined ? {} : { cookie } })

t.test('seed sessions: real cookies authenticate, the signed-out one does not, minted ones match Better Auth\'s format', async (t) => {
  t.equal(decodeURIComponent(signedCookieValue(user.token, TEST_SECRET)), decodeURIComponent(user.cookieValue), 'cookie = token.HMAC-SHA256(secret)')
  t.equal((await me(cookieHeader({ kind: 'valid', who: 'user' }, seeds))).json().user.email, USER.email)
  t.equal((await me(cookieHeader({ kind: 'valid', who: 'admin' }, seeds))).json().user.role, 'admin')
  t.equal((await me(cookieHeader({ kind: 'revoked' }, seeds))).statusCode, 401, 'signed-out session')
  await mintSession('user')
  t.equal((await me(cookieHeader({ kind: 'valid', who: 'user' }, seeds))).json().user.email, USER.email, 'a minted session authenticates')
})

// ---------------------------------------------------------------------------------------------------------------
// Routes

t.test('the OpenAPI document lists the routes the fuzzer needs', async (t) => {
  t.ok(documented.length >= 50, `${documented.length} documented operations`)
  for (const path of ['/health', '/api/me', '/api/auth/sign-in/email', '/api/auth/sign-up/email', '/api/auth/admin/list-users', '/api/auth/reset-password/{token}']) {
    t.ok(documented.some((route) => route.path === path), path)
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Judging an answer

/**
 * Kinds of violation found by this suite and fixed in src/, tallied separately and checked to stay at 0. (The first
 * run found nine kinds; 6ca27cc fixed eight, which are now ordinary violations, and e529d19 this one.)
 */
const KNOWN = {
  NODE_NO_ANSWER: 'Node closed the connection without any answer for CONNECT (no \'connect\' listener) and for a request with ' +
    'Upgrade: websocket whose body it then cannot parse (no \'upgrade\' listener, and no clientError either). Harmless, but not ' +
    'a JSON error. Fix in src/app.ts if wanted: app.server.on(\'connect\') and on(\'upgrade\') writing a JSON 405/400 ' +
    '{code: "UPGRADE_NOT_SUPPORTED"} and closing the socket; Node then sends every Upgrade request there (this API has no websockets).'
} as const
type KnownKind = keyof typeof KNOWN

const CODE = /^[A-Z][A-Z0-9_]*$/
const LEAK = /\n\s+at .+:\d+:\d+|node_modules|SERVER_ERROR|invalid byte sequence|syntax for type|violates .* constraint/

interface Problem { kind: KnownKind | 'VIOLATION', group: string, detail: string }

/**
 * Judges one answer: no 5xx; every 4xx (but HEAD's) JSON with a stable code; no internals in an error; no row written by
 * a rejected request (unless `orphaned`: the raw bytes also carried a valid request that the server ran, whose answer was
 * lost when the bytes after it closed the connection); no prototype pollution.
 */
function judge (route: string, request: Sent, answer: Answer, errors: typeof serverErrors, before: Fingerprint, after: Fingerprint, orphaned = false): Problem[] {
  const problems: Problem[] = []
  const violation = (group: string, detail = '') => problems.push({ kind: 'VIOLATION', group, detail })
  const text = answer.body.toString('utf8')

  if (answer.error !== undefined) {
    violation('no answer', answer.error)
  } else {
    if (answer.status >= 500) {
      violation(`${answer.status} ${request.method} ${route}`, errors.map((error) => `${error.code ?? ''} ${error.message}`).join('; '))
    }
    if (answer.status >= 400 && request.method !== 'HEAD') {
      const json = parseJson(text)
      const contentType = String(answer.headers['content-type'] ?? '')
      const body = (typeof json === 'object' && json !== null && !Array.isArray(json) ? json : undefined) as Record<string, unknown> | undefined
      if (body === undefined || typeof body.code !== 'string' || !CODE.test(body.code) || !/json/.test(contentType) ||
        (body.message !== undefined && typeof body.message !== 'string')) {
        violation(`${answer.status} without a JSON {code}: ${request.method} ${route}`, `${contentType} ${shorten(JSON.stringify(text), 200)}`)
      }
    }
    // (Unless the request itself sent that text, which a 404 message may quote.)
    const leak = answer.status >= 400 ? LEAK.exec(text) : null
    if (leak !== null && !`${request.url}${request.payload?.toString('latin1') ?? ''}`.includes(leak[0])) {
      violation(`internals in a ${answer.status} body: ${request.method} ${route}`, shorten(text, 300))
    }
  }
  if ((answer.error !== undefined || answer.status >= 400) && !orphaned) {
    const changed = changedTables(before, after)
    if (changed.length > 0) violation(`a rejected request wrote rows: ${request.method} ${route}`, changed.join(', '))
  }
  if ('fuzzPolluted' in ({} as Record<string, unknown>)) {
    violation('Object.prototype polluted', `${request.method} ${route}`)
    delete (Object.prototype as Record<string, unknown>).fuzzPolluted
  }
  return problems
}

/** Text safe for a TAP comment: control characters (a raw request's CR, LF, NUL) escaped, except our own newlines. */
function printable (text: string): string {
  return text.split('\n').map((line) => line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('\n')
}

// One request must not hold the event loop: the slowest legitimate answers (a password hash, the 500 ms that
// send-verification-email waits) take well under a second.
const SLOW_MS = 3000

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

t.test('the invariants catch what they are meant to catch', async (t) => {
  const state = await fingerprint(db, seeds)
  const wrote: Fingerprint = { ...state, tables: { ...state.tables, session: { rows: state.tables.session.rows + 1, version: 'newer' } } }
  const request: Sent = { method: 'POST', url: '/api/auth/sign-in/email', headers: {}, payload: Buffer.from('{}') }
  const json = (status: number, body: unknown, contentType = 'application/json'): Answer =>
    ({ status, headers: { 'content-type': contentType }, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) })
  const kinds = (answer: Answer, after = state, errors: typeof serverErrors = [], sent = request) =>
    judge('/api/auth/sign-in/email', sent, answer, errors, state, after).map((problem) => problem.kind)

  t.same(kinds(json(400, { code: 'VALIDATION_ERROR', message: 'no' })), [], 'a 4xx with a stable code passes')
  t.same(kinds(json(200, { ok: true }), wrote), [], 'an accepted request may write')
  t.same(kinds(json(500, { code: 'INTERNAL_ERROR', message: 'x' })), ['VIOLATION'], 'a 500 of unknown cause fails')
  t.same(kinds(json(503, { code: 'DATABASE_UNAVAILABLE', message: 'x' })), ['VIOLATION'], 'so does a 503')
  t.same(kinds(json(404, 'Not Found', 'text/plain')), ['VIOLATION'], 'a text 4xx fails')
  t.same(kinds(json(400, { code: 'bad code', message: 'x' })), ['VIOLATION'], 'a code that is not an UPPER_SNAKE constant fails')
  t.same(kinds(json(400, { message: 'no code' })), ['VIOLATION'], 'a 4xx without a code fails')
  t.same(kinds(json(404, 'null')), ['VIOLATION'], 'so does a JSON null')
  t.same(kinds(json(401, { code: 'UNAUTHORIZED', message: 'x' }), wrote), ['VIOLATION'], 'a rejected request that wrote fails')
  t.same(judge('/api/me', request, json(400, { code: 'X', message: 'x' }), [], state, wrote, true).map((problem) => problem.kind), [],
    '… unless a request it carried was dispatched and lost its answer')
  t.same(kinds(json(400, { code: 'X', message: 'error: x\n    at f (/app/node_modules/pg/lib/client.js:1:2)' })), ['VIOLATION'], 'a stack trace fails')
  t.same(kinds(json(400, { code: 'X', message: 'invalid byte sequence for encoding "UTF8": 0x00' })), ['VIOLATION'], 'a database error fails')
  t.same(kinds({ status: 0, headers: {}, body: Buffer.alloc(0), error: 'socket hang up' }), ['VIOLATION'], 'no answer fails')
  t.same(kinds(json(400, { code: 'X', message: 'x' }), state, [], { ...request, payload: Buffer.from('{"a":{"__proto__":{"fuzzPolluted":1}}}') }), [],
    'a polluting payload alone is no violation…')
  Object.defineProperty(Object.prototype, 'fuzzPolluted', { value: 1, configurable: true, enumerable: false })
  t.same(kinds(json(400, { code: 'X', message: 'x' })), ['VIOLATION'], '… a polluted Object.prototype is (and is cleaned)')
  t.notOk('fuzzPolluted' in ({} as Record<string, unknown>))
})

// ---------------------------------------------------------------------------------------------------------------
// Running cases, one at a time (the database fingerprint tells which case wrote what)

const stats = {
  cases: {} as Record<string, number>,
  statuses: {} as Record<string, number>,
  routes: new Set<string>(),
  acceptedWrites: {} as Record<string, number>,
  time: {} as Record<string, { cases: number, ms: number }>,
  repairs: 0,
  known: Object.fromEntries(Object.keys(KNOWN).map((kind) => [kind, new Map<string, { count: number, example: string }>()])) as Record<KnownKind, Map<string, { count: number, example: string }>>
}

/** After a case that ended a seed's session, demoted the admin or removed the victim (all legitimate), put it back. */
async function repairSeeds (state: Fingerprint): Promise<Fingerprint> {
  if (state.userSessionAlive && state.adminSessionAlive && state.adminIsAdmin && state.victimExists) return state
  stats.repairs++
  if (!state.victimExists) {
    seeds.victim.email = `fuzz-victim-${stats.repairs}@example.com`
    await db.query(`INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt") VALUES ($1, 'Victim', $2, false, now(), now())`,
      [seeds.victim.id, seeds.victim.email])
  }
  if (!state.adminIsAdmin) await db.query('UPDATE "user" SET role = \'admin\', banned = false WHERE id = $1', [seeds.admin.id])
  if (!state.userSessionAlive) await mintSession('user')
  if (!state.adminSessionAlive) await mintSession('admin')
  return fingerprint(db, seeds)
}

/** Records the outcome; returns the violations that are not known (the property fails on them). */
async function record (category: string, route: string, request: Sent, answer: Answer, errorsFrom: Mark, cookie?: CookieSpec,
  { countCase = true, orphaned = false, ms = 0 } = {}): Promise<string[]> {
  const before = current
  const after = await fingerprint(db, seeds)
  const problems = judge(route, request, answer, errorsSince(errorsFrom), before, after, orphaned)
  if (ms > SLOW_MS) problems.push({ kind: 'VIOLATION', group: `answered in ${Math.round(ms)} ms: ${request.method} ${route}`, detail: '' })
  if (countCase) stats.cases[category] = (stats.cases[category] ?? 0) + 1
  const statusClass = answer.error !== undefined ? 'no answer' : `${String(answer.status)[0]}xx`
  stats.statuses[statusClass] = (stats.statuses[statusClass] ?? 0) + 1
  stats.routes.add(`${request.method} ${route}`)
  if (answer.error === undefined && answer.status < 400 && changedTables(before, after).length > 0) {
    stats.acceptedWrites[`${request.method} ${route}`] = (stats.acceptedWrites[`${request.method} ${route}`] ?? 0) + 1
  }
  current = await repairSeeds(after)
  const unknown: string[] = []
  for (const problem of problems) {
    if (problem.kind === 'VIOLATION') {
      unknown.push(`${problem.group}${problem.detail === '' ? '' : `\n  ${problem.detail}`}\n  request: ${describeRequest(request, cookie)}\n  answer: ${describeAnswer(answer)}`)
    } else {
      // Keep the smallest example of each group: the closest thing to a minimal reproduction.
      const example = `${describeRequest(request, cookie)}\n    → ${describeAnswer(answer)}`
      const groups = stats.known[problem.kind]
      const entry = groups.get(problem.group) ?? { count: 0, example }
      entry.count++
      if (example.length < entry.example.length) entry.example = example
      groups.set(problem.group, entry)
    }
  }
  return unknown
}

let previousOverHttp = '(none)'

/** app.inject, or the network when light-my-request cannot express the URL (`/\\/host`: an "Invalid URL" to it). */
async function injectOrHttp (request: Sent): Promise<Answer> {
  try {
    return await sendInject(app, request)
  } catch (error) {
    if (!(error instanceof TypeError && /Invalid URL/.test(error.message))) throw error
    return sendHttp(port, agent, request)
  }
}

async function runCase (fuzzCase: FuzzCase): Promise<string[]> {
  const request = materialize(fuzzCase, seeds)
  const errorsFrom = mark()
  const sentAt = performance.now()
  const answer = fuzzCase.transport === 'inject' ? await injectOrHttp(request) : await sendHttp(port, agent, request)
  const ms = performance.now() - sentAt
  const time = stats.time[fuzzCase.route] ??= { cases: 0, ms: 0 }
  time.cases++
  time.ms += ms
  if (fuzzCase.transport === 'http' && answer.error !== undefined) answer.error += `\n  (previous request on the keep-alive connection: ${previousOverHttp})`
  if (fuzzCase.transport === 'http') previousOverHttp = `${describeRequest(request, fuzzCase.cookie)}\n  → ${describeAnswer(answer)}`
  return record(fuzzCase.category, fuzzCase.route, request, answer, errorsFrom, fuzzCase.cookie, { ms })
}

function describeCase (fuzzCase: FuzzCase): string {
  return `[${fuzzCase.category} via ${fuzzCase.transport}] ${describeRequest(materialize(fuzzCase, seeds), fuzzCase.cookie, true)}`
}

/**
 * Runs a property over cases. An unknown violation fails it: fast-check shrinks the case, and the failure shows the
 * smallest request that still breaks an invariant, what broke, and the seed and path that replay it.
 */
async function fuzz<T> (t: Test, name: string, arbitrary: fc.Arbitrary<T>, numRuns: number, run: (value: T) => Promise<string[]>, describe: (value: T) => string, seedOffset: number) {
  const seed = SEED + seedOffset
  current = await repairSeeds(await fingerprint(db, seeds))
  const details = await fc.check(fc.asyncProperty(fc.limitShrink(arbitrary, 300), async (value) => {
    const problems = await run(value)
    if (problems.length > 0) throw new Error(problems.join('\n'))
  }), { seed, numRuns })
  if (!details.failed) {
    t.pass(`${name}: ${details.numRuns} cases without an unknown violation`)
  } else if (details.counterexample === null) {
    t.fail(`${name}: fast-check stopped: ${String(details.errorInstance)}`)
  } else {
    const [value] = details.counterexample
    t.fail(`${name}: ${String((details.errorInstance as Error)?.message ?? details.errorInstance).split('\n')[0]}`, {
      violation: String((details.errorInstance as Error)?.message ?? details.errorInstance),
      smallestCase: describe(value),
      afterCases: details.numRuns,
      shrinks: details.numShrinks,
      replay: `FUZZ_SEED=${SEED} (property seed ${seed}, path ${details.counterexamplePath})`
    })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Generators of whole cases

const STANDARD_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

function bodyFor (route: RouteSpec, wellFormed: boolean): fc.Arbitrary<{ body: BodySpec, contentType?: string }> {
  const document = route.body !== undefined ? objectFor(route.body) : fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 3 })
  const json = (weight: number) => ({ weight, arbitrary: document.map((value) => ({ body: { kind: 'json' as const, value } })) })
  if (wellFormed) return fc.oneof(json(1))
  const noBody = route.method === 'GET' || route.method === 'HEAD'
  return fc.oneof(
    json(noBody ? 1 : 10),
    { weight: noBody ? 8 : 1, arbitrary: fc.constant({ body: { kind: 'none' as const } }) },
    { weight: 1, arbitrary: anyJson.map((value) => ({ body: { kind: 'json' as const, value } })) },
    { weight: 2, arbitrary: malformedJson(document.map((value) => JSON.stringify(value))).map((text) => ({ body: { kind: 'text' as const, text } })) },
    { weight: 1, arbitrary: fc.tuple(deepJson, fc.boolean()).map(([deep, whole]) => ({ body: { kind: 'text' as const, text: whole ? deep : `{"email":"a@example.com","password":"xxxxxxxx","name":"n","data":${deep},"userId":${deep}}` } })) },
    { weight: 1, arbitrary: document.map((value) => ({ body: { kind: 'text' as const, text: formEncode(value) }, contentType: 'application/x-www-form-urlencoded' })) },
    { weight: 1, arbitrary: invalidUtf8Body.map((bytes) => ({ body: { kind: 'bytes' as const, bytes } })) },
    { weight: 1, arbitrary: fc.constantFrom(65_000, 66_000, 1_100_000).map((size) => ({ body: { kind: 'text' as const, text: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(size) }) } })) }
  )
}

function formEncode (value: unknown): string {
  if (typeof value !== 'object' || value === null) return percentEncode(String(value))
  return Object.entries(value).map(([key, item]) => `${percentEncode(key)}=${percentEncode(typeof item === 'string' ? item : JSON.stringify(item) ?? '')}`).join('&')
}

/**
 * Cases for one route. Half keep a well-formed envelope (the route's method, a trusted Origin, JSON, a live session:
 * the admin's on admin routes) so that hostile values reach the handlers; the rest fuzz the envelope as well.
 */
function caseFor (route: RouteSpec, category: string, transport: FuzzCase['transport']): fc.Arbitrary<FuzzCase> {
  const isAdminRoute = route.path.startsWith('/api/auth/admin/')
  const wellFormed = fc.record({
    method: fc.constant(route.method),
    url: urlFor(route),
    origin: fc.constant<string | undefined>(TRUSTED_ORIGIN),
    contentType: fc.constant<string | undefined>('application/json'),
    extra: fc.constant<Array<[string, string]>>([]),
    cookie: isAdminRoute
      ? fc.constant<CookieSpec>({ kind: 'valid', who: 'admin' })
      : fc.constantFrom<CookieSpec>({ kind: 'valid', who: 'user' }, { kind: 'valid', who: 'user' }, { kind: 'valid', who: 'admin' }),
    body: route.method === 'GET' ? fc.constant<{ body: BodySpec, contentType?: string }>({ body: { kind: 'none' } }) : bodyFor(route, true)
  })
  const fuzzed = fc.record({
    method: fc.oneof({ weight: 9, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...STANDARD_METHODS) }),
    url: urlFor(route),
    origin: originHeader,
    contentType: contentTypeHeader,
    extra: extraHeaders,
    cookie: cookieSpec,
    body: bodyFor(route, false)
  })
  return fc.oneof(wellFormed, fuzzed).map(({ method, url, origin, contentType, extra, cookie, body }) => ({
    category,
    route: route.path,
    transport,
    method,
    url,
    headers: [...(origin === undefined ? [] : [['origin', origin] as [string, string]]), ...extra],
    cookie,
    contentType: body.body.kind === 'none' && contentType === 'application/json' ? undefined : (body.contentType ?? contentType),
    body: body.body
  }))
}

const unknownCase = (category: string, transport: FuzzCase['transport']): fc.Arbitrary<FuzzCase> => fc.record({
  method: fc.constantFrom(...STANDARD_METHODS),
  url: unknownPath,
  cookie: cookieSpec,
  body: fc.oneof(fc.constant<BodySpec>({ kind: 'none' }), anyJson.map((value): BodySpec => ({ kind: 'json', value })))
}).map(({ method, url, cookie, body }) => ({
  category,
  route: 'unknown path',
  transport,
  method,
  url,
  headers: [['origin', TRUSTED_ORIGIN]],
  cookie,
  contentType: body.kind === 'none' ? undefined : 'application/json',
  body
}))

// Routes that hash or verify a password (scrypt, ~150 ms here) on plausible input, or wait on purpose (send-verification-email
// takes 500 ms for an unknown address); each still gets dozens of cases.
const HASHING = /\/(sign-in\/email|sign-up\/email|send-verification-email|change-password|verify-password|set-password|delete-user|two-factor\/(enable|disable|get-totp-uri)|admin\/(create-user|set-user-password))$/
const cheapRoutes = routes.filter((route) => !HASHING.test(route.path))
const hashingRoutes = routes.filter((route) => HASHING.test(route.path))

const anyRouteCase = (category: string, transport: FuzzCase['transport']) => fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(...cheapRoutes).chain((route) => caseFor(route, category, transport)) },
  { weight: 1, arbitrary: fc.constantFrom(...hashingRoutes).chain((route) => caseFor(route, category, transport)) },
  { weight: 3, arbitrary: unknownCase(category, transport) }
)

// ---------------------------------------------------------------------------------------------------------------
// The categories

t.test('every route, fuzzed through app.inject (bodies, types, strings, headers, cookies, methods, content types)', async (t) => {
  await fuzz(t, 'inject', anyRouteCase('routes (inject)', 'inject'), share(0.6), runCase, describeCase, 0)
})

t.test('every route, fuzzed over real HTTP', async (t) => {
  // Heads over Node's 16 KiB limit get 431 and a reset while the client is still writing: the raw category reads those.
  const overHttp = anyRouteCase('routes (http)', 'http').filter((fuzzCase) => fuzzCase.headers.every(([, value]) => isHeaderSafe(value)) &&
    fuzzCase.url.length + fuzzCase.headers.reduce((sum, [name, value]) => sum + name.length + value.length, 0) < 12_000)
  await fuzz(t, 'http', overHttp, share(0.1), runCase, describeCase, 1)
})

// Routes whose answer tells whether, and as whom, the request was authenticated.
const PROBES = [
  { method: 'GET', url: '/api/me', who: (answer: Answer) => answer.status === 200 ? emailOf(JSON.parse(answer.body.toString()).user) : answer.status === 401 ? null : 'unexpected' },
  { method: 'GET', url: '/api/auth/get-session', who: (answer: Answer) => answer.status === 200 ? emailOf(JSON.parse(answer.body.toString())?.user) : 'unexpected' },
  { method: 'GET', url: '/api/auth/list-sessions', who: (answer: Answer) => answer.status === 200 ? 'someone' : answer.status === 401 ? null : 'unexpected' },
  { method: 'GET', url: '/api/auth/admin/list-users', who: (answer: Answer) => answer.status === 200 ? 'fuzz-admin@example.com' : answer.status === 403 ? 'someone' : answer.status === 401 ? null : 'unexpected' }
] as const

function emailOf (user: { email?: string } | null | undefined): string | null {
  return user?.email ?? null
}

t.test('session cookies: forged, truncated, tampered, unsigned, garbage and replayed signed-out cookies never authenticate', async (t) => {
  const arbitrary = fc.record({ probe: fc.nat(PROBES.length - 1), cookie: cookieSpec, http: fc.boolean() })
  const emails = { user: USER.email, admin: 'fuzz-admin@example.com' }
  await fuzz(t, 'cookies', arbitrary, share(0.1), async ({ probe: index, cookie, http }) => {
    const probe = PROBES[index]!
    const header = cookieHeader(cookie, seeds)
    const request: Sent = { method: probe.method, url: probe.url, headers: header === undefined ? {} : { cookie: header } }
    const errorsFrom = mark()
    const sentAt = performance.now()
    const answer = http && (header === undefined || isHeaderSafe(header)) ? await sendHttp(port, agent, request) : await injectOrHttp(request)
    const problems = await record('session cookies', probe.url, request, answer, errorsFrom, cookie, { ms: performance.now() - sentAt })
    if (answer.error !== undefined || answer.status >= 500) return problems
    let as: string | null
    try {
      as = probe.who(answer)
    } catch {
      as = 'unexpected'
    }
    const expected = authenticatesAs(cookie)
    if (as === 'unexpected') problems.push(`${probe.url} answered ${describeAnswer(answer)} to cookie ${cookie.kind}`)
    else if (INVALID_COOKIE_KINDS.has(cookie.kind) && as !== null) problems.push(`a ${cookie.kind} cookie authenticated (${as}) on ${probe.url}: ${header}`)
    else if (expected === 'user' || expected === 'admin') {
      if (as === null) problems.push(`the live ${expected} cookie did not authenticate on ${probe.url}`)
      else if (as !== 'someone' && as !== emails[expected]) problems.push(`the ${expected} cookie authenticated as ${as}`)
    } else if (expected === 'maybe' && as !== null && as !== 'someone' && as !== emails[(cookie as { who: 'user' | 'admin' }).who]) {
      problems.push(`a decorated ${(cookie as { who: string }).who} cookie authenticated as ${as}`)
    }
    return problems
  }, ({ probe, cookie, http }) => `${PROBES[probe]!.method} ${PROBES[probe]!.url} via ${http ? 'http' : 'inject'} with cookie ${JSON.stringify(cookie)}`, 2)
})

// Raw bytes over TCP: what fetch and node:http refuse to send.
// Each dimension is mostly well-formed, so that about half the requests get past the parser with a hostile body.
const rawMethod = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') },
  { weight: 2, arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PROPFIND', 'M-SEARCH', 'QUERY', 'FOO', 'get', 'G\u0000T', 'GÉT', 'GET\u00a0') }
)
const rawVersion = fc.oneof(
  { weight: 9, arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.0') },
  { weight: 1, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/0.9', 'HTTP/1.2', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1.1\u0000', '') }
)
const rawTarget = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...routes).map((route) => route.path.replace(/\{[^}]+\}/g, 'x')) },
  { weight: 2, arbitrary: fc.constantFrom('/api/me\u0000', '/api/%00', '/\u00e9', '/\u00ff\u00fe', '*', 'http://localhost:5173/api/me', 'http://evil.example/health',
    '//evil.example/', '/api/auth/get-session?x=\u007f', '/health#frag', '/health?\u0000', '/api/auth/sign-in/email\r', '/api/auth/../../health',
    '/api/auth/%c0%ae%c0%ae/health', '/health?' + 'a'.repeat(20_000), '', ' ', '/\t/', '/api/auth/ok\u000b', '/api/me?%') },
  { weight: 2, arbitrary: unknownPath }
)

const rawHeaderLine = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom('x-fuzz', 'accept', 'user-agent', 'referer', 'x-forwarded-for', 'fly-client-ip', 'cookie', 'origin', 'content-type'), headerText).map(([name, value]) => `${name}: ${value}`) },
  { weight: 3, arbitrary: fc.constantFrom(
    // Header injection and malformed header lines.
    'X-Fuzz: a\rb', 'X-Fuzz: a\nb', 'X-Fuzz: a\u0000b', 'X-Fuzz: a\u007fb', 'X-Fuzz: \u00ff\u00fe', 'X-Fuzz:  value  ', ' folded: continuation', '\tfolded',
    'Bad Name: x', 'Bad\u0000Name: x', 'Bad\u00e9Name: x', ': no-name', 'no-colon', 'X-Fuzz', 'X-Fuzz:', 'X-Fuzz : spaced',
    'Cookie: better-auth.session_token=\u0000', 'Cookie: better-auth.session_token=\u00ff\u00fe', 'Cookie: ' + 'a=b; '.repeat(2000),
    'Origin: http://localhost:5173\r\nOrigin: http://evil.example', 'Host: evil.example', 'Host: ', 'Host: a b', 'Host: localhost:99999',
    'Content-Type: application/json\u0000', 'Content-Type: ' + 'a'.repeat(10_000), 'X-Big: ' + 'a'.repeat(17_000),
    'Connection: upgrade\r\nUpgrade: websocket', 'Upgrade: h2c', 'Expect: 100-continue', 'Expect: 200-ok', 'Transfer-Encoding: gzip',
    'Content-Encoding: gzip', 'X-HTTP-Method-Override: DELETE', 'Connection: close', 'Connection: keep-alive, TE', 'TE: trailers',
    'Set-Cookie: injected=1', 'Accept-Encoding: ' + 'gzip, '.repeat(1000), 'If-Modified-Since: yesterday', 'Range: bytes=0-0,1-1,2-2'
  ) }
)

const rawFraming = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('length', 'length', 'length', 'chunked', 'none') },
  { weight: 3, arbitrary: fc.constantFrom('short', 'long', 'negative', 'garbage', 'double', 'chunked-bad', 'chunked-huge', 'te+cl', 'te-obfuscated') }
)

const rawBody = fc.oneof(
  { weight: 3, arbitrary: objectFor({ properties: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' }, token: { type: 'string' } } }).map((value) => Buffer.from(JSON.stringify(value))) },
  { weight: 2, arbitrary: invalidUtf8Body.map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from('{"email":"a@example.com"}\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n')) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) }
)

const rawCase = fc.record({
  method: rawMethod,
  target: rawTarget,
  version: rawVersion,
  host: fc.constantFrom('Host: localhost', 'Host: localhost', 'Host: localhost', '', 'Host: localhost\r\nHost: evil.example'),
  origin: fc.constantFrom('Origin: http://localhost:5173', 'Origin: http://localhost:5173', '', 'Origin: http://evil.example'),
  cookie: cookieSpec,
  contentType: fc.constantFrom('Content-Type: application/json', 'Content-Type: application/json', 'Content-Type: application/x-www-form-urlencoded', 'Content-Type: text/plain', ''),
  headers: fc.array(rawHeaderLine, { maxLength: 3 }),
  lineEnding: fc.oneof({ weight: 12, arbitrary: fc.constant('\r\n') }, { weight: 1, arbitrary: fc.constantFrom('\n', '\r') }),
  framing: rawFraming,
  body: rawBody,
  pipelined: fc.boolean()
})

type RawCase = typeof rawCase extends fc.Arbitrary<infer T> ? T : never

function rawBytes (c: RawCase): Buffer {
  const cookie = cookieHeader(c.cookie, seeds)
  const lines = [`${c.method} ${c.target}${c.version === '' ? '' : ` ${c.version}`}`, c.host, c.origin, c.contentType, ...(cookie === undefined ? [] : [`Cookie: ${cookie}`]), ...c.headers].filter((line) => line !== '')
  const body = c.body
  let payload = body
  switch (c.framing) {
    case 'none': payload = Buffer.alloc(0); break
    case 'length': lines.push(`Content-Length: ${body.length}`); break
    case 'short': lines.push(`Content-Length: ${Math.max(0, body.length - 3)}`); break
    case 'long': lines.push(`Content-Length: ${body.length + 10}`); break
    case 'negative': lines.push('Content-Length: -1'); break
    case 'garbage': lines.push('Content-Length: 1e3'); break
    case 'double': lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`); break
    case 'chunked': lines.push('Transfer-Encoding: chunked'); payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]); break
    case 'chunked-bad': lines.push('Transfer-Encoding: chunked'); payload = Buffer.concat([Buffer.from('zz\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]); break
    case 'chunked-huge': lines.push('Transfer-Encoding: chunked'); payload = Buffer.concat([Buffer.from('ffffffffffffffff\r\n'), body]); break
    case 'te+cl': lines.push('Transfer-Encoding: chunked', `Content-Length: ${body.length}`); payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]); break
    case 'te-obfuscated': lines.push('Transfer-Encoding : chunked', `Content-Length: ${body.length}`); break
  }
  const head = Buffer.from(lines.join(c.lineEnding) + c.lineEnding + c.lineEnding, 'latin1')
  const next = c.pipelined ? Buffer.from('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n') : Buffer.alloc(0)
  return Buffer.concat([head, payload, next])
}

const rawStats = { answers: 0, lost: 0 }

t.test('malformed bytes over raw TCP: invalid UTF-8, NUL bytes, header injection, bad framing, truncated bodies, odd methods', async (t) => {
  await fuzz(t, 'raw', rawCase, share(0.2), async (c) => {
    const bytes = rawBytes(c)
    const errorsFrom = mark()
    const sentAt = performance.now()
    const { answers: all, closedWithoutAnswer, error, raw } = await sendRaw(port, bytes, c.method, c.pipelined ? 2 : 1)
    // An interim 100 Continue (Expect: 100-continue) precedes the answer to the same request.
    const answers = all.filter((answer) => answer.status >= 200)
    const ms = performance.now() - sentAt
    const request: Sent = { method: c.method, url: c.target, headers: {}, payload: bytes }
    const problems: string[] = []
    if (error !== undefined) problems.push(`raw exchange failed: ${error}; got ${shorten(JSON.stringify(raw.toString('latin1')), 300)}`)
    const orphaned = await quiesce()
    if (closedWithoutAnswer) {
      // Node's own silences (see NODE_NO_ANSWER), and an answer still being computed when the client half-closed (see
      // sendRaw); anything else deserves an answer. The database is compared either way.
      const upgrade = /\r?\nupgrade:/i.test(bytes.toString('latin1').split('\r\n\r\n')[0]!)
      if (c.method === 'CONNECT' || upgrade) {
        const example = `${describeRequest(request)}\n    → connection closed without an answer`
        const group = c.method === 'CONNECT' ? 'CONNECT' : 'Upgrade with a body Node cannot parse'
        const entry = stats.known.NODE_NO_ANSWER.get(group) ?? { count: 0, example }
        entry.count++
        if (example.length < entry.example.length) entry.example = example
        stats.known.NODE_NO_ANSWER.set(group, entry)
      } else if (orphaned) {
        rawStats.lost++
      } else {
        problems.push(`closed without an answer: ${shorten(JSON.stringify(bytes.toString('latin1')), 300)}`)
      }
      stats.cases['raw TCP'] = (stats.cases['raw TCP'] ?? 0) + 1
      const after = await fingerprint(db, seeds)
      const changed = changedTables(current, after)
      if (changed.length > 0 && !orphaned) problems.push(`a request closed without an answer wrote rows: ${changed.join(', ')}`)
      current = await repairSeeds(after)
    }
    for (const [i, answer] of answers.entries()) {
      rawStats.answers++
      const route = i === 0 ? c.target.split('?')[0]!.slice(0, 60) : 'pipelined'
      problems.push(...await record('raw TCP', route, { ...request, method: i === 0 ? c.method : 'GET' }, answer, errorsFrom, c.cookie,
        { countCase: i === 0, orphaned, ms: i === 0 ? ms : 0 }))
    }
    return problems
  }, (c) => `raw bytes ${shorten(JSON.stringify(rawBytes(c).toString('latin1')), 16_384)}`, 3)
})

// Every route with every method, deterministically: wrong methods and content types on each path at least once.
const SWEEP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'SEARCH', 'PROPFIND', 'LOCK', 'QUERY']
const SWEEP_CONTENT_TYPES = [undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']

t.test('every route × every method × content types (sweep)', async (t) => {
  const templates = [...new Set(routes.map((route) => route.path))]
  const unknown: string[] = []
  current = await repairSeeds(await fingerprint(db, seeds))
  let i = 0
  for (const template of templates) {
    for (const method of SWEEP_METHODS) {
      const contentType = SWEEP_CONTENT_TYPES[i % SWEEP_CONTENT_TYPES.length]
      const cookie: CookieSpec = [{ kind: 'none' as const }, { kind: 'valid' as const, who: 'user' as const }, { kind: 'valid' as const, who: 'admin' as const }][i % 3]!
      i++
      unknown.push(...await runCase({
        category: 'method sweep',
        route: template,
        transport: i % 5 === 0 ? 'http' : 'inject',
        method,
        url: template.replace(/\{[^}]+\}/g, 'x'),
        headers: i % 7 === 0 ? [] : [['origin', TRUSTED_ORIGIN]],
        cookie,
        contentType,
        body: contentType === undefined ? { kind: 'none' } : { kind: 'text', text: contentType.includes('json') ? '{}' : contentType.includes('urlencoded') ? 'a=1' : '<a/>' }
      }))
    }
  }
  t.same(unknown, [], `${i} method × route cases without an unknown violation`)
})

t.test('latency: a 60 000-character callbackURL or redirectTo is refused as fast as a short one', async (t) => {
  // Any POST to /api/auth with a long URL field, unauthenticated and without Origin, made Better Auth log "Invalid
  // callbackURL: <url>" through withoutAddresses(), which was quadratic: 9 s of blocked event loop per request. The random
  // cases keep such strings shorter (see hugeString); this is the attack at full size, within the 64 KiB body limit.
  for (const [path, field] of [['/api/auth/request-password-reset', 'redirectTo'], ['/api/auth/sign-in/social', 'callbackURL']] as const) {
    const request: Sent = {
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/json' },
      payload: Buffer.from(JSON.stringify({ email: 'a@example.com', provider: 'github', [field]: 'a'.repeat(60_000) }))
    }
    const errorsFrom = mark()
    const sentAt = performance.now()
    const answer = await sendHttp(port, agent, request)
    const ms = performance.now() - sentAt
    t.same(await record('latency', path, request, answer, errorsFrom, undefined, { ms }), [], `${path}: ${describeAnswer(answer)}`)
    t.equal(answer.status, 403, `${field} refused`)
    t.ok(ms < 1000, `answered in ${Math.round(ms)} ms`)
  }
})

// ---------------------------------------------------------------------------------------------------------------
// After the run

t.test('after the run: the server answers over the network, the seeds still work, nothing crashed', async (t) => {
  const health = await sendHttp(port, new http.Agent(), { method: 'GET', url: '/health', headers: {} })
  t.equal(health.status, 200, 'GET /health')
  t.same(JSON.parse(health.body.toString()), { status: 'ok' })
  const ready = await sendHttp(port, new http.Agent(), { method: 'GET', url: '/health/ready', headers: {} })
  t.equal(ready.status, 200, `GET /health/ready: ${describeAnswer(ready)}`)
  current = await repairSeeds(await fingerprint(db, seeds))
  t.equal((await me(cookieHeader({ kind: 'valid', who: 'user' }, seeds))).statusCode, 200, 'the user\'s session works')
  t.same(crashes, [], 'no unhandled rejection or uncaught exception')
  t.notOk('fuzzPolluted' in ({} as Record<string, unknown>), 'Object.prototype is clean')
})

// Found by this suite and fixed in src/app.ts (listeners for CONNECT and Upgrade): must stay at 0.
t.test('violations found earlier stay fixed', async (t) => {
  for (const [kind, reason] of Object.entries(KNOWN) as Array<[KnownKind, string]>) {
    const groups = [...stats.known[kind].entries()].sort((a, b) => b[1].count - a[1].count)
    const count = groups.reduce((sum, [, { count }]) => sum + count, 0)
    for (const [group, { count, example }] of groups.slice(0, 15)) t.comment(`${kind} ×${count}: ${printable(group)}\n  e.g. ${printable(example).replaceAll('\n', '\n  ')}`)
    if (groups.length > 15) t.comment(`${kind}: ${groups.length - 15} more groups`)
    t.equal(count, 0, `${kind}: ${count} cases in ${groups.length} groups`, { reason })
  }
})

t.test('summary', async (t) => {
  const total = Object.values(stats.cases).reduce((sum, n) => sum + n, 0)
  t.comment(`fuzz: ${total} cases in ${((performance.now() - startedAt) / 1000).toFixed(1)} s, seed ${SEED}, FUZZ_RUNS ${RUNS}`)
  for (const [category, count] of Object.entries(stats.cases)) t.comment(`  ${category}: ${count}`)
  t.comment(`  statuses: ${JSON.stringify(stats.statuses)}`)
  t.comment(`  raw TCP: ${rawStats.answers} answers; ${rawStats.lost} lost at the client's half-close while still being computed`)
  t.comment(`  ${stats.routes.size} method+route pairs exercised; ${stats.repairs} seed repairs`)
  t.comment(`  accepted requests that wrote rows: ${JSON.stringify(stats.acceptedWrites)}`)
  const slowest = Object.entries(stats.time).sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)
  t.comment(`  slowest routes: ${slowest.map(([route, { cases, ms }]) => `${route} ${cases} cases ${(ms / 1000).toFixed(1)} s`).join('; ')}`)
  t.ok(total >= RUNS, `${total} cases run`)
  const documentedPairs = documented.map((route) => `${route.method} ${route.path}`)
  t.same(documentedPairs.filter((pair) => !stats.routes.has(pair)), [], 'every documented operation was exercised')
})
