// The production image, rehearsed without Docker (there is no engine here). The Dockerfile is read, not copied:
// its build context (git's files minus .dockerignore), its COPY lines, its pnpm RUN lines and its runtime CMD and ENV
// are replayed in a temporary folder, one folder per stage standing in for the container's filesystem. Then
// fly.toml's release_command migrates a fresh database in the runtime stage (production dependencies only) and the
// CMD serves a sign-up and shuts down cleanly on SIGTERM. What it cannot show: the base image itself (the Dockerfile's
// Node there, this machine's Node here; CI runs the suite on both), root-owned files read by the `node` user, Fly's proxy.
import { cpSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, posix } from 'node:path'
import t from 'tap'
import { DockerfileParser, JSONInstruction, ModifiableInstruction, type Instruction } from 'dockerfile-ast'
import { parse as parseToml } from 'smol-toml'
import { projectRoot } from '../src/config/index.js'
import { POOL_THREAD_NICENESS } from '../src/auth/password-hashing.js'
import { freePort, TEST_SECRET, TRUSTED_ORIGIN } from './helpers/app.js'
import { createTestDatabase } from './helpers/database.js'
import { splitStages, stageByName as findStage, stageEnv, type Stage } from './helpers/dockerfile.js'
import { runCommand, spawnServer } from './helpers/process.js'

const dockerfileText = readFileSync(join(projectRoot, 'Dockerfile'), 'utf8')
const dockerfile = DockerfileParser.parse(dockerfileText)
const fly = parseToml(readFileSync(join(projectRoot, 'fly.toml'), 'utf8')) as unknown as FlyToml
const dockerignore = parseDockerignore(readFileSync(join(projectRoot, '.dockerignore'), 'utf8'))
const packageJson = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

interface FlyToml {
  app: string
  kill_signal?: string
  kill_timeout?: string | number
  deploy?: { release_command?: string }
  env?: Record<string, string>
  metrics?: { port?: number, path?: string }
  http_service?: {
    internal_port?: number
    checks?: Array<{ method?: string, path?: string, grace_period?: string, interval?: string, timeout?: string }>
  }
}

const stages = splitStages(dockerfile.getInstructions())
const runtime = stages.at(-1)!
const runtimeEnv = stageEnv(stages, runtime)
// What the image runs; a shell-form CMD is reported by the first test instead of breaking the whole file.
let runtimeCmd: string[] = []
let runtimeCmdProblem: string | undefined
try {
  runtimeCmd = [...execForm(runtime, 'ENTRYPOINT'), ...execForm(runtime, 'CMD')]
} catch (error) {
  runtimeCmdProblem = (error as Error).message
}

// The server's own shutdown delay, read from its source (importing src/server.ts would start a server).
const shutdownDelayMs = Number(/SHUTDOWN_DELAY_MS\s*=\s*([\d_]+)/.exec(readFileSync(join(projectRoot, 'src/server.ts'), 'utf8'))?.[1]?.replaceAll('_', ''))

t.test('the Dockerfile and fly.toml agree with each other and with the app', async (t) => {
  t.equal(runtimeEnv.NODE_ENV, 'production', 'the runtime stage sets NODE_ENV=production')
  const user = last(runtime, 'USER')?.getArguments()[0]?.getValue()
  t.ok(user !== undefined && !['root', '0', '0:0'].includes(user), `the runtime stage runs as a non-root USER (${user})`)
  t.equal(last(runtime, 'ENTRYPOINT'), undefined, 'no ENTRYPOINT wraps the CMD')
  t.equal(runtimeCmdProblem, undefined, 'CMD is in exec form: signals reach node, not a shell')
  t.equal(runtimeCmd[0], 'node', `CMD starts node itself, not pnpm or npm (${JSON.stringify(runtimeCmd)})`)

  const port = fly.http_service?.internal_port
  t.equal(port, Number(fly.env?.PORT), 'http_service.internal_port is the PORT the app is given')
  const exposed = runtime.instructions.filter((i) => i.getKeyword() === 'EXPOSE').flatMap((i) => i.getArguments().map((a) => Number(a.getValue().split('/')[0])))
  t.ok(exposed.includes(port!), `the image EXPOSEs internal_port ${port} (${exposed.join(', ')})`)
  t.equal(fly.env?.NODE_ENV, 'production', 'fly.toml [env] sets NODE_ENV=production')
  t.equal(fly.metrics?.port, Number(fly.env?.METRICS_PORT), '[metrics] port is the METRICS_PORT the app is given')
  t.not(fly.metrics?.port, port, 'metrics are not on the public port')
  t.equal(fly.metrics?.path, '/metrics', '[metrics] path is where the metrics server answers')

  t.equal(fly.kill_signal, 'SIGTERM', 'Fly sends the signal the server shuts down gracefully on')
  t.ok(Number.isFinite(shutdownDelayMs), `SHUTDOWN_DELAY_MS found in src/server.ts (${shutdownDelayMs})`)
  t.ok(seconds(fly.kill_timeout) > shutdownDelayMs / 1000,
    `kill_timeout (${fly.kill_timeout}) is longer than the server's shutdown delay (${shutdownDelayMs / 1000} s)`)

  const checks = fly.http_service?.checks ?? []
  t.equal(checks.length, 1, 'one HTTP check')
  t.equal(checks[0]?.path, '/health', 'the check is the liveness route, which needs no database')
  t.equal(checks[0]?.method ?? 'GET', 'GET', 'the check is a GET')

  t.type(fly.deploy?.release_command, 'string', 'fly.toml has a release_command')
  t.equal(fly.deploy?.release_command?.trim().split(/\s+/)[0], 'node', 'the release_command runs node: the runtime image has no pnpm')

  // The context Docker would send is the whole folder, ignored files included: secrets and local state must stay out.
  for (const path of ['.env', '.data/test/database-url', 'node_modules/tap/package.json', 'dist/src/server.js', 'test/image.test.ts', '.git/HEAD']) {
    t.ok(dockerignore(path), `.dockerignore keeps ${path} out of the build context`)
  }

  const pnpmPin = /\bnpm (?:i|install) (?:-g|--global) pnpm@(\S+)/.exec(dockerfileText)?.[1]
  const localPnpm = (await runCommand(['pnpm', '--version'], { env: process.env })).stdout.trim()
  t.equal(pnpmPin, localPnpm, 'the image pins the pnpm this rehearsal runs with')
})

// The replayed stages, kept until the last test has used the runtime stage.
const temp = mkdtempSync(join(tmpdir(), 'pond-image-'))
t.teardown(() => rmSync(temp, { recursive: true, force: true }))
// The runtime stage's working directory on this machine, once the build has been replayed.
let app: string | undefined
// Set once the release_command has migrated the database the server needs.
let migrated = false

t.test('the build stages run as Docker would run them', async (t) => {
  const started = Date.now()

  const context = join(temp, 'context')
  const listed = await runCommand(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: projectRoot, env: process.env })
  t.equal(listed.code, 0, 'git lists the files', { stderr: listed.stderr })
  const files = listed.stdout.split('\0').filter((file) => file !== '' && !dockerignore(file) && existsSync(join(projectRoot, file)))
  for (const file of files) {
    mkdirSync(dirname(join(context, file)), { recursive: true })
    copyFileSync(join(projectRoot, file), join(context, file))
  }
  t.ok(files.includes('pnpm-lock.yaml') && !files.some((file) => file.startsWith('test/')), `build context: ${files.length} files`)

  const built = await replay(t, stages, { context, temp })
  app = built.get(runtime.name)!.workdirPath()
  t.comment(`build replayed in ${Date.now() - started} ms`)

  // The bundles carry every dependency: the image has no node_modules at all (the tests below run it that way).
  t.notOk(existsSync(join(app, 'node_modules')), 'no node_modules in the runtime stage')
  t.ok(existsSync(join(app, 'dist/swagger-ui/index.html')), 'the API reference page\'s files are beside the bundle')
  t.comment(`runtime stage: ${(directorySize(app) / 1e6).toFixed(1)} MB of files`)
  t.ok(runtimeCmd[1] !== undefined && existsSync(join(app, runtimeCmd[1])), `the CMD's script ${runtimeCmd[1]} is in the image`)
  t.ok(existsSync(join(app, 'dist/scripts/doctor.js')), 'the doctor is in the image (docs/DEPLOY.md, step 6)')
  const imagePackage = existsSync(join(app, 'package.json')) ? JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) : {}
  t.equal(imagePackage.type, 'module', 'the image has package.json: dist/*.js are ES modules and the project root is found')
})

const databaseUrl = await createTestDatabase(t)
// SMTP_URL points where nothing listens: the verification email fails to send, which is logged and harmless here.
const secrets = { DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: TEST_SECRET, SMTP_URL: 'smtp://127.0.0.1:1' }

t.test('fly.toml\'s release_command migrates with production dependencies only', async (t) => {
  if (app === undefined) return t.fail('no image: the build did not complete')
  // As Fly runs it: split into arguments (no shell), the image's ENV, the app's [env] and secrets.
  const command = fly.deploy!.release_command!.trim().split(/\s+/)
  const env = {
    ...runtimeEnv,
    ...fly.env,
    ...secrets,
    FLY_APP_NAME: fly.app,
    RELEASE_COMMAND: '1',
    PATH: process.env.PATH
  }
  const first = await runCommand(command, { cwd: app, env })
  t.equal(first.code, 0, 'first run exits 0', { output: first.stdout + first.stderr })
  t.match(first.stdout, /Migrated:/, 'it says what it migrated')
  t.match(first.stdout, /table "user"/, 'it created the user table')
  t.match(first.stdout, /table "session"/, 'it created the session table')
  const password = new URL(databaseUrl).password
  if (password !== '') t.notOk(first.stdout.includes(password), 'the database password is not printed')

  const again = await runCommand(command, { cwd: app, env })
  t.equal(again.code, 0, 'second run exits 0', { output: again.stdout + again.stderr })
  t.match(again.stdout, /Nothing to migrate/, 'a second deploy finds nothing pending')
  migrated = first.code === 0 && again.code === 0

  // The doctor, as docs/DEPLOY.md's `fly ssh console -C "node /app/dist/scripts/doctor.js"` runs it: an absolute
  // path (the image's WORKDIR is here), from another directory. Here the mail server is away and fly.toml's
  // placeholder domains fail, so it exits 1.
  const guide = readFileSync(join(projectRoot, 'docs/DEPLOY.md'), 'utf8')
  const doctorCommand = /fly ssh console -C "node \/app\/(dist\/scripts\/doctor\.js)"/.exec(guide)?.[1]
  t.ok(doctorCommand, 'docs/DEPLOY.md runs the doctor on a machine')
  const doctor = await runCommand(['node', join(app, doctorCommand ?? 'missing')], { cwd: '/', env })
  t.match(doctor.stdout, /^ok\s+database\s/m, 'the compiled doctor reaches the database', { output: doctor.stdout + doctor.stderr })
  t.match(doctor.stdout, /^ok\s+migrations\s+the schema is up to date/m, 'and finds nothing to migrate')
  t.equal(doctor.code, 1, 'and reports the problems of this rehearsal\'s configuration')
})

t.test('the runtime CMD serves a sign-up and exits 0 on SIGTERM', async (t) => {
  if (app === undefined) return t.fail('no image: the build did not complete')
  if (!migrated) return t.fail('no migrated database: the release_command failed above')
  if (runtimeCmd.length === 0) return t.fail('no exec-form CMD to run')
  const port = await freePort()
  const server = await spawnServer(t, {
    command: runtimeCmd,
    cwd: app,
    env: {
      ...runtimeEnv,
      ...secrets,
      PORT: String(port),
      HOST: '127.0.0.1',
      BETTER_AUTH_URL: `http://localhost:${port}`,
      TRUSTED_ORIGINS: TRUSTED_ORIGIN,
      MAIL_FROM: String(fly.env?.MAIL_FROM)
    },
    port,
    readyTimeoutMs: 15_000
  })

  const health = await fetch(`${server.url}/health`)
  t.same(await health.json(), { status: 'ok' }, 'GET /health (Fly\'s check) answers')

  const signUp = await fetch(`${server.url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'image@example.com', password: 'correct horse battery', name: 'Image' })
  })
  const body = await signUp.text()
  t.equal(signUp.status, 200, 'sign-up answers 200', { body })
  t.notMatch(signUp.headers.get('set-cookie') ?? '', /session_token=/, 'no session before the email is verified (production default)')
  t.equal(JSON.parse(body).user?.email, 'image@example.com', 'the user was created')

  // Hashing threads yield to the event loop (src/auth/password-hashing.ts): Node 24 and later name libuv's threads.
  const threads = threadsOf(server.child.pid!)
  const poolThreads = threads.filter((thread) => thread.name === 'libuv-worker')
  if (Number(process.versions.node.split('.')[0]) >= 24) {
    t.ok(poolThreads.length >= 4, `libuv's pool threads are there (${poolThreads.length})`)
    t.same(poolThreads.map((thread) => thread.nice), poolThreads.map(() => POOL_THREAD_NICENESS), 'each at a lower priority')
    t.same(threads.filter((thread) => thread.name.includes('MainThread')).map((thread) => thread.nice), [0],
      'the event loop\'s thread keeps the normal priority')
  } else {
    t.comment(`Node ${process.version} does not name its pool threads: their priority is left as it is`)
  }

  const firstLine = server.output().split('\n')[0] ?? ''
  t.doesNotThrow(() => JSON.parse(firstLine), 'production logs are JSON lines')

  const stopping = Date.now()
  server.child.kill('SIGTERM')
  const { code, signal } = await server.exited
  t.equal(signal, null, 'not killed by the signal')
  t.equal(code, 0, 'exits 0 after SIGTERM', { output: server.output() })
  t.ok(Date.now() - stopping < shutdownDelayMs, `shut down in ${Date.now() - stopping} ms`)
})

/** A process's threads with their names and niceness, from /proc. */
function threadsOf (pid: number) {
  return readdirSync(`/proc/${pid}/task`).map((id) => {
    const stat = readFileSync(`/proc/${pid}/task/${id}/stat`, 'utf8')
    // After "pid (comm) ", nice is the 17th field.
    const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
    return { name: readFileSync(`/proc/${pid}/task/${id}/comm`, 'utf8').trim(), nice }
  })
}

// ---------------------------------------------------------------------------------------------------------------
// The Dockerfile, read with dockerfile-ast.

function stageByName (name: string): Stage | undefined {
  return findStage(stages, name)
}

function last (stage: Stage, keyword: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.getKeyword() === keyword).at(-1)
}

/** CMD or ENTRYPOINT as an argument list (exec form only: a shell form would put sh between Fly and node). */
function execForm (stage: Stage, keyword: 'CMD' | 'ENTRYPOINT'): string[] {
  const instruction = last(stage, keyword) ?? (stageByName(stage.from) ? last(stageByName(stage.from)!, keyword) : undefined)
  if (instruction === undefined) return []
  if (!(instruction instanceof JSONInstruction) || instruction.getOpeningBracket() === null) {
    throw new Error(`${keyword} must be in exec form (a JSON array): ${instruction.getTextContent()}`)
  }
  return instruction.getJSONStrings().map((s) => s.getJSONValue())
}

function flag (instruction: Instruction, name: string): string | undefined {
  if (!(instruction instanceof ModifiableInstruction)) return undefined
  return instruction.getFlags().find((f) => f.getName() === name)?.getValue() ?? undefined
}

// ---------------------------------------------------------------------------------------------------------------
// The build, replayed: each stage gets a folder standing in for its container's root.

interface BuiltStage {
  root: string
  workdir: string
  /** The stage's WORKDIR on this machine. */
  workdirPath: () => string
}

/** What the replay needs of a tap test. */
interface Test { comment: (...message: unknown[]) => void }

async function replay (t: Test, all: Stage[], { context, temp }: { context: string, temp: string }): Promise<Map<string, BuiltStage>> {
  // As BuildKit does: only the stages the last one needs, in file order.
  const needed = new Set<Stage>()
  const need = (stage: Stage) => {
    if (needed.has(stage)) return
    needed.add(stage)
    const parent = stageByName(stage.from)
    if (parent) need(parent)
    for (const i of stage.instructions) {
      const from = i.getKeyword() === 'COPY' ? flag(i, 'from') : undefined
      if (from !== undefined) need(stageByName(from) ?? fail(`COPY --from=${from}: no such stage (images are not rehearsed)`))
    }
  }
  need(all.at(-1)!)
  // A stage continued by exactly one FROM and copied from by no one can hand its folder over instead of being copied.
  const uses = (stage: Stage) => all.filter((s) => needed.has(s) && (stageByName(s.from) === stage ||
    s.instructions.some((i) => i.getKeyword() === 'COPY' && flag(i, 'from')?.toLowerCase() === stage.name.toLowerCase()))).length

  const built = new Map<string, BuiltStage>()
  for (const [index, stage] of all.entries()) {
    if (!needed.has(stage)) continue
    const parent = stageByName(stage.from)
    let root = join(temp, `stage-${index}-${stage.name}`)
    let workdir = '/'
    if (parent !== undefined) {
      const base = built.get(parent.name)!
      workdir = base.workdir
      if (uses(parent) === 1) root = base.root
      else cpSync(base.root, root, { recursive: true, verbatimSymlinks: true })
    }
    mkdirSync(root, { recursive: true })
    const current: BuiltStage = { root, workdir, workdirPath: () => join(current.root, current.workdir) }
    built.set(stage.name, current)
    const env = stageEnv(stages, stage)

    for (const instruction of stage.instructions) {
      const keyword = instruction.getKeyword()
      const args = instruction.getArguments().map((a) => a.getValue())
      if (keyword === 'WORKDIR') {
        current.workdir = posix.resolve(current.workdir, args[0]!)
        mkdirSync(current.workdirPath(), { recursive: true })
      } else if (keyword === 'COPY') {
        copy(instruction, args, current, built, context)
      } else if (keyword === 'RUN') {
        await run(t, instruction, current, env)
      } else if (!['ENV', 'ARG', 'USER', 'EXPOSE', 'CMD', 'ENTRYPOINT', 'LABEL', 'STOPSIGNAL', 'HEALTHCHECK'].includes(keyword)) {
        fail(`${keyword} is not rehearsed: teach test/image.test.ts what it does (${instruction.getTextContent()})`)
      }
    }
  }
  return built
}

/** COPY [--from=stage] src... dest, with Docker's rules: a folder's contents are copied, a trailing / means "into". */
function copy (instruction: Instruction, args: string[], into: BuiltStage, built: Map<string, BuiltStage>, context: string) {
  const from = flag(instruction, 'from')
  const sources = args.slice(0, -1)
  const dest = args.at(-1)!
  const target = join(into.root, posix.resolve(into.workdir, dest))
  const intoFolder = dest.endsWith('/') || sources.length > 1
  for (const source of sources) {
    if (/[*?[]/.test(source)) fail(`COPY ${source}: wildcards are not rehearsed`)
    let path: string
    if (from !== undefined) {
      const stage = built.get(stageByName(from)!.name)!
      path = join(stage.root, posix.resolve(stage.workdir, source))
    } else {
      if (posix.normalize(source).startsWith('..')) fail(`COPY ${source}: outside the build context`)
      path = join(context, posix.normalize(source))
    }
    if (!existsSync(path)) fail(`${instruction.getTextContent()}: ${source} does not exist ${from ? `in stage ${from}` : 'in the build context (.dockerignore?)'}`)
    if (statSync(path).isDirectory()) {
      cpSync(path, target, { recursive: true, verbatimSymlinks: true })
    } else {
      const file = intoFolder || (existsSync(target) && statSync(target).isDirectory()) ? join(target, basename(path)) : target
      mkdirSync(dirname(file), { recursive: true })
      copyFileSync(path, file)
    }
  }
}

/** A RUN line: pnpm commands run here (without a shell); installing pnpm is skipped (the same pnpm is checked above). */
async function run (t: Test, instruction: Instruction, stage: BuiltStage, stageVariables: Record<string, string>) {
  const text = instruction instanceof JSONInstruction && instruction.getOpeningBracket() !== null
    ? instruction.getJSONStrings().map((s) => s.getJSONValue()).join(' ')
    : instruction.getArguments().map((a) => a.getValue()).join(' ')
  // Enough of a shell for `a && b`; anything fancier must be taught here first.
  for (const part of text.split('&&').map((p) => p.trim())) {
    if (/^npm (?:i|install) (?:-g|--global) pnpm@\S+$/.test(part)) {
      t.comment(`skipped: ${part} (pnpm is installed here)`)
      continue
    }
    if (/[|;&<>$`"'\\*?]/.test(part) || !part.startsWith('pnpm ')) fail(`RUN ${part}: only plain pnpm commands are rehearsed`)
    const command = part.split(/\s+/)
    // Docker builds see only the image's ENV; here pnpm also needs this machine's HOME (its store) and PATH.
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('XDG_') || key === 'TMPDIR')),
      ...stageVariables
    }
    const started = Date.now()
    let result = await runCommand(command, { cwd: stage.workdirPath(), env })
    if (result.code !== 0 && command.includes('--offline')) {
      t.comment(`${part} failed offline (the store here is missing a package): retrying with --prefer-offline`)
      result = await runCommand(command.map((arg) => arg === '--offline' ? '--prefer-offline' : arg), { cwd: stage.workdirPath(), env })
    }
    if (result.code !== 0) fail(`RUN ${part} exited with ${result.code}:\n${result.stdout}\n${result.stderr}`)
    t.comment(`RUN ${part} (${Date.now() - started} ms)`)
  }
}

function fail (message: string): never {
  throw new Error(message)
}

// ---------------------------------------------------------------------------------------------------------------

/** Fly durations: a number of seconds or "15s", "500ms", "1m". */
function seconds (value: string | number | undefined): number {
  if (typeof value === 'number') return value
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value ?? '')
  if (!match) return NaN
  const n = Number(match[1])
  return match[2] === 'ms' ? n / 1000 : match[2] === 'm' ? n * 60 : n
}

/**
 * .dockerignore as Docker reads it: one pattern per line relative to the context root, `*` and `?` within a path
 * segment, `**` across segments, `!` re-includes, the last matching line wins, and a pattern that matches a folder
 * excludes everything in it.
 */
function parseDockerignore (text: string): (path: string) => boolean {
  const rules = text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#')).map((line) => {
    const negate = line.startsWith('!')
    const pattern = posix.normalize((negate ? line.slice(1) : line).trim()).replace(/^\/+/, '').replace(/\/+$/, '')
    const source = pattern.split(/(\*\*\/|\*\*|\*|\?)/).map((piece) => {
      if (piece === '**/') return '(?:.*/)?'
      if (piece === '**') return '.*'
      if (piece === '*') return '[^/]*'
      if (piece === '?') return '[^/]'
      return piece.replace(/[.+^${}()|[\]\\]/g, '\\$&')
    }).join('')
    return { negate, regex: new RegExp(`^${source}$`) }
  })
  return (path: string) => {
    const segments = path.split('/')
    const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
    let ignored = false
    for (const rule of rules) if (prefixes.some((prefix) => rule.regex.test(prefix))) ignored = !rule.negate
    return ignored
  }
}

/** Bytes of every file under `dir` (what the runtime stage adds to the node base image). */
function directorySize (dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + statSync(join(entry.parentPath, entry.name)).size, 0)
}
