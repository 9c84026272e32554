import { chownSync, existsSync, mkdirSync, mkdtempSync, statSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { stopEmbeddedPostgres } from '../src/db/embedded-postgres.js'
import { freePort } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { runCommand, spawnServer } from './helpers/process.js'

// The zero-setup path: no DATABASE_URL, no secret, development. Each start is a real server process.
const dataDir = mkdtempSync(join(tmpdir(), 'pond-embedded-'))
t.teardown(async () => {
  await stopEmbeddedPostgres(dataDir).catch(() => {})
  rmSync(dataDir, { recursive: true, force: true })
})

async function startDev (t: { teardown: (fn: () => unknown) => void }) {
  const port = await freePort()
  const server = await spawnServer(t, { env: { DATA_DIR: dataDir, PORT: String(port) }, port })
  return { ...server, url: `http://localhost:${port}` }
}

const credentials = { email: 'yesterday@example.com', password: 'a password from yesterday', name: 'Yesterday' }
let port: number

t.test('a fresh start creates, migrates and serves the embedded database', async (t) => {
  const server = await startDev(t)
  port = Number(new URL(server.url).port)
  t.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')), 'the cluster lives under the data folder')
  t.ok(existsSync(join(dataDir, 'auth-secret')), 'a development secret was generated')
  t.match(server.output(), /creating the embedded PostgreSQL database \(first run\)/)
  t.match(server.output(), /embedded database migrated/)
  t.match(server.output(), /BETTER_AUTH_SECRET is not set: generated one for development/)

  const signUp = await browserClient(server.url).post('/api/auth/sign-up/email', credentials)
  t.equal(signUp.status, 200, signUp.text)

  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'the embedded server stopped with the app')
})

t.test('a second start keeps the data and the secret: yesterday\'s user signs in, old cookies still work', async (t) => {
  const first = await startDev(t)
  const browser = browserClient(first.url)
  const signIn = await browser.post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
  t.equal(signIn.status, 200, signIn.text)
  t.notMatch(first.output(), /first run|embedded database migrated/, 'nothing to create the second time')
  first.child.kill('SIGTERM')
  await first.exited

  const second = await startDev(t)
  const me = await browserClient(second.url)
  await me.jar.setCookie((await browser.cookies())[0]!, second.url)
  t.equal((await me.get('/api/me')).json().user.email, credentials.email, 'the session survived the restart')
})

t.test('after a crash, the orphaned PostgreSQL is stopped and the next start works', async (t) => {
  const crashed = await startDev(t)
  crashed.child.kill('SIGKILL')
  await crashed.exited
  const pid = Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0])
  t.ok(isRunning(pid), 'the orphan is still running')

  const next = await startDev(t)
  t.match(next.output(), /stopping an embedded PostgreSQL left running by an earlier run/)
  const signIn = await browserClient(next.url).post('/api/auth/sign-in/email', { email: credentials.email, password: credentials.password })
  t.equal(signIn.status, 200)
  t.notOk(isRunning(pid), 'the orphan is gone')
})

t.test('as a normal user', {
  skip: process.getuid?.() === 0 ? false : 'needs root to start a process as another user (as a normal user, every other test here is this case)'
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pond-embedded-user-'))
  const nobody = { uid: 65534, gid: 65534 }
  chownSync(dir, nobody.uid, nobody.gid)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const userPort = await freePort()
  const server = await spawnServer(t, { env: { DATA_DIR: dir, PORT: String(userPort), HOME: dir }, port: userPort, ...nobody })
  t.equal(statSync(join(dir, 'postgres')).uid, nobody.uid, 'the cluster belongs to the user who ran it')
  const signUp = await browserClient(`http://localhost:${userPort}`).post('/api/auth/sign-up/email', { ...credentials, email: 'user@example.com' })
  t.equal(signUp.status, 200, signUp.text)
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('when it cannot start, it says why and what to do', async (t) => {
  const broken = mkdtempSync(join(tmpdir(), 'pond-embedded-broken-'))
  t.teardown(() => rmSync(broken, { recursive: true, force: true }))
  // A data folder from an unknown PostgreSQL version.
  mkdirSync(join(broken, 'postgres'), { recursive: true })
  writeFileSync(join(broken, 'postgres', 'PG_VERSION'), '9\n')
  writeFileSync(join(broken, 'postgres-password'), 'x\n')
  const { code, stderr } = await runCommand([process.execPath, '--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, DATA_DIR: broken, PORT: String(port ?? 3999) }
  })
  t.equal(code, 1)
  t.match(stderr, /^Embedded PostgreSQL could not start: /)
  t.match(stderr, /What to do: .*DATABASE_URL/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
})

/** Alive and not a zombie waiting for a parent that is not ours to reap it. */
function isRunning (pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}
