// `pnpm bench` (after `pnpm build`): the numbers of issue 6, measured side by side in one run. See docs/BENCHMARKS.md.
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem, type } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hashPassword } from 'better-auth/crypto'
import { runtimeEnv } from '../test/helpers/dockerfile.js'
import { startMailServer } from '../test/helpers/mail-server.js'
import { pgbouncerMissing, startPgBouncer } from '../test/helpers/pgbouncer.js'
import { createDatabase, dropDatabase, openServer, seedUsers, serverVersion } from './lib/database.js'
import { clientHeaders, runLoad, type LoadOptions, type LoadResult } from './lib/load.js'
import { freePort, nodeVersion, runToCompletion, start, stopAll, waitFor200, type Child, type Wrap } from './lib/processes.js'
import { median, pairedRatio, renderReport, summarize, updateDocs, formatMs, formatRatio, formatRps, type Report, type Row, type Target } from './lib/report.js'
import { peakMb, resetPeak, rssMb, sampleRss } from './lib/rss.js'
import { vmMemory } from './lib/vm-memory.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const resultsDir = join(root, 'bench', 'results')
const logsDir = join(resultsDir, 'logs')

// Knobs (docs/BENCHMARKS.md). BENCH_QUICK=1 is for working on the harness: its numbers mean nothing.
const env = process.env
const QUICK = env.BENCH_QUICK === '1'
const DURATION_S = Number(env.BENCH_DURATION ?? (QUICK ? 2 : 3))
const ROUNDS = Number(env.BENCH_ROUNDS ?? (QUICK ? 1 : 3))
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 50)
const COLD_STARTS = Number(env.BENCH_COLD_STARTS ?? (QUICK ? 2 : 5))
const NODE = env.BENCH_NODE || process.execPath
const SIGN_IN_CONNECTIONS = 10
const BURST_CONNECTIONS = 50
const USERS = 500
const SESSIONS = QUICK ? 8 : 40
const PASSWORD = 'correct horse battery staple'
/** The frontend's origin: Better Auth refuses POSTs without a trusted Origin. */
const FRONTEND = 'http://localhost:5173'

const say = (line: string) => process.stdout.write(`${line}\n`)
// Output piped into `head` that has gone away must not end the run before it cleans up.
process.stdout.on('error', () => {})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// Everything to undo, last first: it runs on success, on failure and on Ctrl-C.
const cleanups: Array<() => unknown> = []
let cleaning: Promise<void> | undefined
function cleanUp (): Promise<void> {
  cleaning ??= (async () => {
    await stopAll().catch((error: unknown) => say(`cleanup: ${(error as Error).message}`))
    for (const step of cleanups.reverse()) {
      try {
        await step()
      } catch (error) {
        say(`cleanup: ${(error as Error).message}`)
      }
    }
  })()
  return cleaning
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\n${signal}: stopping the servers and dropping the database…`)
    cleanUp().finally(() => process.exit(130))
  })
}

async function main (): Promise<void> {
  const began = Date.now()
  const load1 = loadavg()[0]!
  const cores = cpus().length
  say(`pond-backend bench: ${DURATION_S} s per scenario, ${ROUNDS} round(s)${QUICK ? ' (QUICK: for developing the harness only)' : ''}`)
  say(`1-min load average ${load1.toFixed(2)} on ${cores} cores`)
  const warnings: string[] = []
  if (load1 > cores * 0.5) {
    warnings.push(`The machine was busy at start (1-min load average ${load1.toFixed(2)} on ${cores} cores): numbers are noisy.`)
    say(`WARNING: ${warnings.at(-1)}`)
  }
  rmSync(logsDir, { recursive: true, force: true })
  mkdirSync(logsDir, { recursive: true })
  const logFile = (name: string) => join(logsDir, `${name}.log`)

  // Database: a fresh one, migrated as Fly's release_command does, dropped at the end.
  const dbServer = await openServer(root, say)
  cleanups.push(() => dbServer.stop())
  const database = await createDatabase(dbServer.adminUrl)
  cleanups.push(() => dropDatabase(dbServer.adminUrl, database.name))
  const postgres = await serverVersion(database.url)
  const serverNode = nodeVersion(NODE)
  say(`Database ${database.name} on ${dbServer.source} (PostgreSQL ${postgres}); servers on Node ${serverNode}`)

  // Each server sees the memory of fly.toml's VM, as on Fly (./lib/vm-memory.ts), where this machine allows it.
  const vm = vmMemory(join(root, 'fly.toml'))
  let serverMemory: string
  let wrap: Wrap | undefined
  if ('reason' in vm) {
    serverMemory = `unconstrained (${vm.reason})`
    warnings.push(`Servers ran with this machine's memory, not fly.toml's VM: ${vm.reason}. Memory figures are larger than on Fly.`)
  } else {
    serverMemory = `each in a ${vm.bytes / 2 ** 20} MB memory cgroup (fly.toml's VM)`
    wrap = vm.wrap
    cleanups.push(() => vm.cleanup())
  }
  say(`Servers' memory: ${serverMemory}`)

  const mail = await startMailServer({ teardown: (fn) => { cleanups.push(fn) } })
  const secret = randomBytes(32).toString('base64url')
  // The image's own ENV lines first, then this run's.
  const image = runtimeEnv(join(root, 'Dockerfile'))
  const productionEnv = (port: number, extra: Record<string, string> = {}) => ({
    ...image,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATABASE_URL: database.url,
    BETTER_AUTH_SECRET: secret,
    BETTER_AUTH_URL: `http://127.0.0.1:${port}`,
    TRUSTED_ORIGINS: `${FRONTEND},http://127.0.0.1:${port}`,
    TRUST_PROXY: 'fly',
    MAIL_TRANSPORT: 'smtp',
    SMTP_URL: mail.url,
    MAIL_FROM: 'Pond <no-reply@pond.example>',
    ...extra
  })
  await runToCompletion(NODE, ['dist/scripts/migrate.js'], { env: productionEnv(1), cwd: root, logFile: logFile('migrate') })

  const users = await seedUsers(database.url, USERS, await hashPassword(PASSWORD))

  // Managed Postgres's pooled URL goes through PgBouncer: a real one (Debian's), in transaction mode, with as many
  // server connections as the service's pool, so the pooled rows measure the extra hop and not a starved pool.
  const noPgBouncer = pgbouncerMissing()
  const pgbouncer = noPgBouncer === undefined
    ? await startPgBouncer({ teardown: (fn) => { cleanups.push(fn) } }, database.url, { poolMode: 'transaction', poolSize: 10 })
    : undefined
  if (noPgBouncer !== undefined) warnings.push(`No pooled rows: ${noPgBouncer}.`)

  // The servers, each in its own process.
  const tsx = ['--import', 'tsx']
  const [pondPort, floorsPort, guidePort, guideOffPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  // As fly.toml runs it: metrics collected and served on their own port.
  const pond = start({ name: 'pond-backend', node: NODE, args: ['dist/server.mjs'], env: productionEnv(pondPort, { METRICS_PORT: String(await freePort()) }), port: pondPort, logFile: logFile('pond-backend'), cwd: root, wrap })
  const floors = start({ name: 'floors', node: NODE, args: [...tsx, 'bench/servers/floors.ts'], env: { PORT: String(floorsPort), DATABASE_URL: database.url }, port: floorsPort, logFile: logFile('floors'), cwd: root, wrap })
  const guide = start({ name: 'guide', node: NODE, args: [...tsx, 'bench/servers/guide.ts'], env: productionEnv(guidePort), port: guidePort, logFile: logFile('guide'), cwd: root, wrap })
  const guideOff = start({ name: 'guide-rate-limit-off', node: NODE, args: [...tsx, 'bench/servers/guide.ts'], env: productionEnv(guideOffPort, { RATE_LIMIT: 'off' }), port: guideOffPort, logFile: logFile('guide-rate-limit-off'), cwd: root, wrap })
  const pooledPort = await freePort()
  const pooled = pgbouncer === undefined
    ? undefined
    : start({ name: 'pond-backend-pooled', node: NODE, args: ['dist/server.mjs'], env: productionEnv(pooledPort, { DATABASE_URL: pgbouncer.url(database.url), METRICS_PORT: String(await freePort()) }), port: pooledPort, logFile: logFile('pond-backend-pooled'), cwd: root, wrap })
  if (pooled !== undefined) await waitFor200(pooled, '/health/ready')
  // Better Auth's /ok counts against the guide's rate limit: poll it gently, as one client.
  const poller = { intervalMs: 200, headers: { 'x-pond-client-ip': '10.255.255.254' } }
  await Promise.all([waitFor200(pond, '/health/ready'), waitFor200(floors, '/ping'), waitFor200(guide, '/api/auth/ok', poller), waitFor200(guideOff, '/api/auth/ok', poller)])
  await sleep(3_000)
  const idleRssMb = rssMb(pond.pid)
  say(`Servers ready; pond-backend idle RSS ${idleRssMb?.toFixed(0)} MB`)

  // Real session cookies: sign in over HTTP, each from its own address (sign-in allows 10 per minute per address).
  const signInBody = () => JSON.stringify({ email: users[Math.floor(Math.random() * users.length)]!.email, password: PASSWORD })
  const cookies: string[] = []
  for (let i = 0; i < SESSIONS; i += 4) {
    await Promise.all(users.slice(i, Math.min(i + 4, SESSIONS)).map(async (user) => {
      const response = await fetch(`${pond.url}/api/auth/sign-in/email`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: FRONTEND, ...clientHeaders() },
        body: JSON.stringify({ email: user.email, password: PASSWORD })
      })
      if (response.status !== 200) throw new Error(`seeding: sign-in answered ${response.status}: ${await response.text()}`)
      cookies.push(response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; '))
    }))
  }
  let next = 0
  const sessionHeaders = () => ({ cookie: cookies[next++ % cookies.length]!, ...clientHeaders() })
  await checkSession(pond, '/api/me', cookies[0]!)
  await checkSession(floors, '/session', cookies[0]!)
  await checkSession(guide, '/api/auth/get-session', cookies[0]!)
  await checkSession(pond, '/api/auth/get-session', cookies[0]!)
  if (pooled !== undefined) await checkSession(pooled, '/api/me', cookies[0]!)
  say(`${cookies.length} sessions signed in; measuring…\n`)

  const signInLoad = (connections: number, length: { durationS: number } | { amount: number }): LoadOptions => ({
    url: pond.url,
    path: '/api/auth/sign-in/email',
    method: 'POST',
    connections,
    ...length,
    timeoutS: 60,
    headers: () => ({ 'content-type': 'application/json', origin: FRONTEND, ...clientHeaders() }),
    body: signInBody
  })
  const sessionLoad = (server: Child, path: string, connections = CONNECTIONS, durationS = DURATION_S): LoadOptions =>
    ({ url: server.url, path, connections, durationS, headers: sessionHeaders })
  const scryptLoop = async (amount: number): Promise<LoadResult> => {
    const output = await runToCompletion(NODE, [...tsx, 'bench/servers/scrypt-loop.ts'], {
      env: { PARALLEL: String(SIGN_IN_CONNECTIONS), AMOUNT: String(amount) }, cwd: root, logFile: logFile('scrypt-loop'), wrap
    })
    const { hashes, seconds, p50Ms, p99Ms } = JSON.parse(output) as { hashes: number, seconds: number, p50Ms: number, p99Ms: number }
    return { rps: hashes / seconds, responses: hashes, p50Ms, p99Ms, statuses: {}, non2xx: 0, errors: 0, seconds }
  }
  // A sign-in takes long enough that cutting a timed run would lose a large share of the work: sign-in and the
  // scrypt loop run a fixed number of requests instead, sized from a first scrypt run to last about BENCH_DURATION.
  const calibration = await scryptLoop(2 * SIGN_IN_CONNECTIONS)
  const hashesPerRound = SIGN_IN_CONNECTIONS * Math.max(2, Math.round(calibration.rps * DURATION_S / SIGN_IN_CONNECTIONS))
  say(`Scrypt: ${formatRps(calibration.rps)} hashes/s with ${SIGN_IN_CONNECTIONS} in flight; sign-in and scrypt rows run ${hashesPerRound} each`)

  // Throughput rows, in the order of the table.
  const throughput: Array<{ row: Row, run: (durationS: number) => Promise<LoadResult> }> = [
    { row: { id: 'http-floor', label: 'HTTP floor: Fastify GET /ping', connections: CONNECTIONS, rounds: [] }, run: (d) => runLoad({ url: floors.url, path: '/ping', connections: CONNECTIONS, durationS: d }) },
    { row: { id: 'db-floor', label: 'DB floor: one prepared session ⋈ user query', connections: CONNECTIONS, rounds: [] }, run: (d) => runLoad(sessionLoad(floors, '/session', CONNECTIONS, d)) },
    { row: { id: 'guide', label: 'Baseline: get-session mounted as Better Auth\'s Fastify guide', connections: CONNECTIONS, rounds: [] }, run: (d) => runLoad(sessionLoad(guide, '/api/auth/get-session', CONNECTIONS, d)) },
    { row: { id: 'guide-rate-limit-off', label: 'Baseline with RATE_LIMIT=off', connections: CONNECTIONS, informational: true, rounds: [] }, run: (d) => runLoad(sessionLoad(guideOff, '/api/auth/get-session', CONNECTIONS, d)) },
    { row: { id: 'me', label: 'pond-backend GET /api/me', connections: CONNECTIONS, rounds: [] }, run: (d) => runLoad(sessionLoad(pond, '/api/me', CONNECTIONS, d)) },
    { row: { id: 'get-session', label: 'pond-backend GET /api/auth/get-session', connections: CONNECTIONS, rounds: [] }, run: (d) => runLoad(sessionLoad(pond, '/api/auth/get-session', CONNECTIONS, d)) },
    ...(pooled === undefined
      ? []
      : [
          { row: { id: 'me-pooled', label: 'pond-backend GET /api/me through PgBouncer (transaction mode)', connections: CONNECTIONS, informational: true, rounds: [] }, run: (d: number) => runLoad(sessionLoad(pooled, '/api/me', CONNECTIONS, d)) },
          { row: { id: 'get-session-pooled', label: 'pond-backend GET /api/auth/get-session through PgBouncer (transaction mode)', connections: CONNECTIONS, informational: true, rounds: [] }, run: (d: number) => runLoad(sessionLoad(pooled, '/api/auth/get-session', CONNECTIONS, d)) }
        ]),
    { row: { id: 'sign-in', label: 'pond-backend POST /api/auth/sign-in/email', connections: SIGN_IN_CONNECTIONS, rounds: [] }, run: (d) => runLoad(signInLoad(SIGN_IN_CONNECTIONS, { amount: d < DURATION_S ? SIGN_IN_CONNECTIONS : hashesPerRound })) },
    { row: { id: 'scrypt', label: 'Bare scrypt loop, Better Auth\'s parameters (hashes/s)', connections: SIGN_IN_CONNECTIONS, rounds: [] }, run: (d) => scryptLoop(d < DURATION_S ? SIGN_IN_CONNECTIONS : hashesPerRound) }
  ]

  // Session checks at 1 connection, alone and during a sign-in storm; the service's memory is watched meanwhile.
  const stormPeaks: number[] = []
  const sampledPeaks: number[] = []
  let hwmResets = true
  const stormStarts: number[] = []
  const watchMemory = async <T>(work: () => Promise<T>): Promise<T> => {
    // What the process already holds when a storm begins (the heap left by the 50-connection scenarios).
    const before = rssMb(pond.pid)
    if (before !== undefined) stormStarts.push(before)
    hwmResets &&= resetPeak(pond.pid)
    const sampler = sampleRss(pond.pid)
    try {
      return await work()
    } finally {
      const sampled = sampler.stop()
      if (sampled !== undefined) sampledPeaks.push(sampled)
      const peak = hwmResets ? peakMb(pond.pid) : undefined
      if (peak !== undefined) stormPeaks.push(peak)
    }
  }
  const stormSignIns: Row = { id: 'storm-sign-in', label: 'sign-in storm under the 1-connection checks', connections: SIGN_IN_CONNECTIONS, rounds: [] }
  const during = async (check: LoadOptions): Promise<LoadResult> => watchMemory(async () => {
    // The storm starts first and ends last, so the whole check runs inside it.
    const storm = runLoad(signInLoad(SIGN_IN_CONNECTIONS, { durationS: check.durationS! + 1 }))
    await sleep(500)
    const result = await runLoad(check)
    stormSignIns.rounds.push(await storm)
    return result
  })
  const checks = [
    { path: '/api/me', label: 'GET /api/me' },
    { path: '/api/auth/get-session', label: 'GET /api/auth/get-session', informational: true }
  ].map((check) => ({
    ...check,
    alone: { id: `alone:${check.path}`, label: `${check.label}, 1 conn, alone`, connections: 1, informational: check.informational, rounds: [] } as Row,
    storm: { id: `storm:${check.path}`, label: `${check.label}, 1 conn, during a ${SIGN_IN_CONNECTIONS}-conn sign-in storm`, connections: 1, informational: check.informational, rounds: [] } as Row
  }))

  if (!QUICK) {
    say('Warming up (1 s each)…')
    for (const { run } of throughput) await run(1)
  }
  for (let round = 1; round <= ROUNDS; round++) {
    say(`Round ${round} of ${ROUNDS}`)
    for (const { row, run } of throughput) {
      const result = await (row.id === 'sign-in' ? watchMemory(() => run(DURATION_S)) : run(DURATION_S))
      row.rounds.push(result)
      say(`  ${row.label}: ${formatRps(result.rps)}/s, p50 ${formatMs(result.p50Ms)} ms, p99 ${formatMs(result.p99Ms)} ms${result.non2xx + result.errors > 0 ? `, non-2xx ${result.non2xx}, errors ${result.errors}` : ''}`)
    }
    for (const check of checks) {
      const options = sessionLoad(pond, check.path, 1)
      check.alone.rounds.push(await runLoad(options))
      check.storm.rounds.push(await during(options))
      const [alone, storm] = [check.alone.rounds.at(-1)!, check.storm.rounds.at(-1)!]
      say(`  ${check.label}, 1 conn: alone p50/p99 ${formatMs(alone.p50Ms)}/${formatMs(alone.p99Ms)} ms, during the storm ${formatMs(storm.p50Ms)}/${formatMs(storm.p99Ms)} ms`)
    }
  }

  say(`Sign-in burst: ${BURST_CONNECTIONS} sign-ins at once`)
  const burst = await watchMemory(() => runLoad(signInLoad(BURST_CONNECTIONS, { amount: BURST_CONNECTIONS })))
  // What the storms left queued (their clients are gone) is still being hashed: let it finish before stopping.
  await sleep(2_000)
  const burstPeak = hwmResets ? stormPeaks.at(-1) : undefined
  const burstSampled = sampledPeaks.at(-1)
  await Promise.all([floors.stop(), guide.stop(), guideOff.stop(), pond.stop(15_000), pooled?.stop(15_000)])

  // Cold start: the production server on the migrated database, spawn → first 200 from /health/ready.
  const coldStarts: number[] = []
  for (let i = 1; i <= COLD_STARTS; i++) {
    const port = await freePort()
    const begun = performance.now()
    const child = start({ name: `cold-start-${i}`, node: NODE, args: ['dist/server.mjs'], env: productionEnv(port, { METRICS_PORT: String(await freePort()) }), port, logFile: logFile(`cold-start-${i}`), cwd: root, wrap })
    await waitFor200(child, '/health/ready', { intervalMs: 5 })
    coldStarts.push(performance.now() - begun)
    await child.stop(15_000)
  }
  say(`Cold starts: ${coldStarts.map((ms) => ms.toFixed(0)).join(', ')} ms`)

  // The report.
  const rows = [...throughput.map(({ row }) => row), ...checks.flatMap((check) => [check.alone, check.storm])]
    .map((row) => ({ ...row, summary: summarize(row) }))
  const summaryOf = (id: string) => rows.find((row) => row.id === id)!.summary
  for (const row of [...rows, { ...stormSignIns, summary: summarize(stormSignIns) }]) {
    const { non2xx, errors, statuses } = row.summary
    if (non2xx + errors > 0) {
      warnings.push(`${row.label}: ${non2xx} non-2xx answer(s) (${JSON.stringify(statuses)}) and ${errors} error(s)/timeout(s): not a valid measurement.`)
    }
  }
  const burstOther = Object.entries(burst.statuses).filter(([status]) => status !== '200' && status !== '503')
  if (burstOther.length > 0 || burst.errors > 0) {
    warnings.push(`Sign-in burst: answers other than 200 and 503 (${JSON.stringify(burst.statuses)}), ${burst.errors} error(s)/timeout(s).`)
  }
  const storms = checks.map((check) => {
    const [alone, storm] = [summaryOf(check.alone.id), summaryOf(check.storm.id)]
    return {
      check: check.label,
      alone: `${formatMs(alone.p50Ms)} / ${formatMs(alone.p99Ms)}`,
      storm: `${formatMs(storm.p50Ms)} / ${formatMs(storm.p99Ms)}`,
      p50Ratio: pairedRatio(check.storm, check.alone, (result) => result.p50Ms),
      p99Ratio: pairedRatio(check.storm, check.alone, (result) => result.p99Ms),
      informational: check.informational
    }
  })
  const stormPeakRssMb = stormPeaks.length > 0 ? Math.max(...stormPeaks) : sampledPeaks.length > 0 ? Math.max(...sampledPeaks) : undefined
  const coldStartMs = median(coldStarts)
  const meStorm = storms[0]!
  const ratio = (a: string, b: string) => pairedRatio(rows.find((row) => row.id === a)!, rows.find((row) => row.id === b)!)
  const targets: Target[] = [
    { what: '/api/me req/s vs the DB floor', measured: formatRatio(ratio('me', 'db-floor')), target: '≥ 0.50x', met: ratio('me', 'db-floor') >= 0.5 },
    { what: 'get-session req/s vs the guide mounting', measured: formatRatio(ratio('get-session', 'guide')), target: '≥ 3.00x', met: ratio('get-session', 'guide') >= 3 },
    { what: 'sign-in vs the bare scrypt loop (same parallelism)', measured: formatRatio(ratio('sign-in', 'scrypt')), target: '≥ 0.80x', met: ratio('sign-in', 'scrypt') >= 0.8 },
    { what: '/api/me p50 during a sign-in storm vs alone', measured: formatRatio(meStorm.p50Ratio), target: '≤ 3.00x', met: meStorm.p50Ratio <= 3 },
    { what: '/api/me p99 during a sign-in storm vs alone', measured: formatRatio(meStorm.p99Ratio), target: '≤ 5.00x', met: meStorm.p99Ratio <= 5 },
    { what: 'peak RSS during sign-in storms', measured: `${stormPeakRssMb?.toFixed(0) ?? '–'} MB`, target: '≤ 200 MB', met: stormPeakRssMb !== undefined && stormPeakRssMb <= 200 },
    { what: 'idle RSS', measured: `${idleRssMb?.toFixed(0) ?? '–'} MB`, target: '≤ 100 MB', met: idleRssMb !== undefined && idleRssMb <= 100 },
    { what: 'cold start to a ready /health/ready', measured: `${coldStartMs.toFixed(0)} ms`, target: '≤ 500 ms', met: coldStartMs <= 500 }
  ]

  const report: Report = {
    date: new Date().toISOString(),
    settings: { durationS: DURATION_S, rounds: ROUNDS, connections: CONNECTIONS, signInConnections: SIGN_IN_CONNECTIONS, burstConnections: BURST_CONNECTIONS, coldStarts: COLD_STARTS, quick: QUICK },
    machine: {
      cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
      cores,
      memoryGb: totalmem() / 2 ** 30,
      os: `${type()} ${release()}`,
      node: serverNode,
      harnessNode: process.version,
      postgres,
      database: dbServer.source,
      serverMemory,
      loadAverage: load1
    },
    rows,
    storms,
    burst: { connections: BURST_CONNECTIONS, statuses: burst.statuses, errors: burst.errors, p50Ms: burst.p50Ms, p99Ms: burst.p99Ms, peakRssMb: burstPeak, sampledPeakRssMb: burstSampled },
    memory: {
      idleRssMb,
      stormPeakRssMb,
      stormPeakSource: hwmResets ? 'VmHWM, reset before each storm' : 'VmRSS samples (VmHWM could not be reset)',
      sampledStormPeakRssMb: sampledPeaks.length > 0 ? Math.max(...sampledPeaks) : undefined,
      stormStartRssMb: stormStarts.length > 0 ? Math.max(...stormStarts) : undefined
    },
    coldStart: { medianMs: coldStartMs, samplesMs: coldStarts },
    targets,
    warnings,
    totalSeconds: (Date.now() - began) / 1000
  }
  const markdown = renderReport(report)
  writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  writeFileSync(join(resultsDir, 'latest.md'), markdown)
  say(`\n${markdown}`)
  for (const warning of warnings) say(`WARNING: ${warning}`)
  const docs = join(root, 'docs', 'BENCHMARKS.md')
  if (QUICK) say('QUICK mode: docs/BENCHMARKS.md left as it was.')
  else if (updateDocs(docs, report)) say(`Updated ${relative(root, docs)}.`)
  else say(`WARNING: ${relative(root, docs)} has no generated block to update.`)
  say(`Raw results: ${relative(root, join(resultsDir, 'latest.json'))}, ${relative(root, join(resultsDir, 'latest.md'))}; server logs in ${relative(root, logsDir)}/`)
}

/** One session-check request must succeed before a scenario counts its answers. */
async function checkSession (server: Child, path: string, cookie: string): Promise<void> {
  const response = await fetch(server.url + path, { headers: { cookie, ...clientHeaders() } })
  const body = await response.text()
  if (response.status !== 200 || body === 'null') throw new Error(`${server.name} ${path} answered ${response.status} ${body.slice(0, 200)} with a fresh session cookie`)
}

try {
  await main()
} catch (error) {
  process.exitCode = 1
  say(`\nbench failed: ${(error as Error).stack ?? String(error)}`)
} finally {
  await cleanUp()
  say('Servers stopped, database dropped.')
}
