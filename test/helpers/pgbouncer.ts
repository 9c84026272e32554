// A real PgBouncer (Debian's package) in front of the test PostgreSQL, as Managed Postgres puts one in front of the
// database. Started in the foreground by the test that needs it and stopped at its teardown.
import { spawn } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { selfSignedCertificate } from './tls.js'

type Test = { teardown: (fn: () => unknown) => void }

export const PGBOUNCER_PATH = process.env.PGBOUNCER_PATH ?? '/usr/sbin/pgbouncer'

/** Why PgBouncer tests cannot run here, or undefined when they can. CI requires them (POND_REQUIRE_PGBOUNCER=1). */
export function pgbouncerMissing (): string | undefined {
  return existsSync(PGBOUNCER_PATH) ? undefined : `no PgBouncer at ${PGBOUNCER_PATH} (apt-get install -y pgbouncer, or set PGBOUNCER_PATH)`
}

export interface PgBouncer {
  /** `serverUrl` with host and port replaced by PgBouncer's: the same user, password and database. */
  url: (serverUrl: string) => string
  /** PgBouncer's own admin console, for SHOW commands. */
  adminUrl: string
  stop: () => Promise<void>
}

export interface PgBouncerOptions {
  poolMode: 'transaction' | 'session'
  /** Server connections per database and user: few, so that consecutive statements change connections. */
  poolSize?: number
  /** TLS for clients, as Managed Postgres's PgBouncer offers it: a self-signed certificate for this host name. */
  tlsHostName?: string
}

/** Starts PgBouncer in front of the PostgreSQL at `serverUrl` (every database on it). */
export async function startPgBouncer (t: Test, serverUrl: string, { poolMode, poolSize = 4, tlsHostName }: PgBouncerOptions): Promise<PgBouncer> {
  const server = new URL(serverUrl)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'pond-pgbouncer-'))
  // PgBouncer refuses to run as root; it switches to this user, who must read its files.
  chmodSync(dir, 0o755)
  const user = decodeURIComponent(server.username)
  const password = decodeURIComponent(server.password)
  const quote = (value: string) => `'${value.replaceAll("'", "\\'")}'`
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 })
  const tls = tlsHostName === undefined ? undefined : selfSignedCertificate(dir, [tlsHostName])
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    // Clients connect without a password (trust, loopback only); PgBouncer logs in to the server with the real one.
    `* = host=${server.hostname} port=${server.port || 5432} user=${quote(user)}${password ? ` password=${quote(password)}` : ''}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'users.txt')}`,
    `admin_users = ${user}`,
    `pool_mode = ${poolMode}`,
    `default_pool_size = ${poolSize}`,
    'max_client_conn = 500',
    'server_reset_query = DISCARD ALL',
    // What node-postgres may send at start-up that PgBouncer does not track.
    'ignore_startup_parameters = extra_float_digits,options',
    ...(tls === undefined ? [] : ['client_tls_sslmode = allow', `client_tls_key_file = ${tls.keyFile}`, `client_tls_cert_file = ${tls.certFile}`]),
    'log_connections = 0',
    'log_disconnections = 0',
    ''
  ].join('\n'), { mode: 0o644 })

  const runAs = process.getuid?.() === 0 ? ['-u', unprivilegedUser()] : []
  const child = spawn(PGBOUNCER_PATH, [...runAs, join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit')
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(stop)

  const deadline = Date.now() + 10_000
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}:\n${output}`)
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen within 10 s:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const url = (target: string) => {
    const through = new URL(target)
    through.hostname = '127.0.0.1'
    through.port = String(port)
    through.password = ''
    return through.toString()
  }
  const admin = new URL(url(serverUrl))
  admin.pathname = '/pgbouncer'
  return { url, adminUrl: admin.toString(), stop }
}

function unprivilegedUser (): string {
  for (const user of ['postgres', 'nobody']) {
    try {
      execFileSync('id', ['-u', user], { stdio: 'ignore' })
      return user
    } catch {}
  }
  throw new Error('PgBouncer cannot run as root and there is no postgres or nobody user')
}

function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}
