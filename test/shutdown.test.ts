import { request } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { createMigratedDatabase, freePort, productionEnv, TRUSTED_ORIGIN } from './helpers/app.js'
import { spawnServer } from './helpers/process.js'
import { query } from './helpers/database.js'
import { mailEnv, startMailServer } from './helpers/mail-server.js'

t.test('SIGTERM: the request in flight finishes, new connections are refused, the process exits 0', async (t) => {
  const databaseUrl = await createMigratedDatabase(t)
  const port = await freePort()
  const server = await spawnServer(t, { env: productionEnv(databaseUrl, port), port })

  // A sign-up whose body is still arriving when the signal comes.
  const body = JSON.stringify({ email: 'inflight@example.com', password: 'a long enough password', name: 'In Flight' })
  const responded = new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request(`${server.url}/api/auth/sign-up/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), origin: TRUSTED_ORIGIN }
    }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, body: text }))
    })
    req.on('error', reject)
    req.write(body.slice(0, 10))
    setTimeout(() => {
      server.child.kill('SIGTERM')
      setTimeout(async () => {
        const refused = await new Promise<boolean>((resolve) => {
          const socket = connect(port, '127.0.0.1')
          socket.on('connect', () => { socket.destroy(); resolve(false) })
          socket.on('error', () => resolve(true))
        })
        t.ok(refused, 'a new connection is refused while shutting down')
        req.end(body.slice(10))
      }, 300)
    }, 200)
  })

  const { status, body: answer } = await responded
  t.equal(status, 200, answer)
  t.equal(JSON.parse(answer).user.email, 'inflight@example.com')
  const { code, signal } = await server.exited
  t.equal(code, 0)
  t.equal(signal, null)
  t.match(server.output(), /shutting down: finishing requests in flight/)
})

t.test('SIGINT closes the same way', async (t) => {
  const databaseUrl = await createMigratedDatabase(t)
  const port = await freePort()
  const server = await spawnServer(t, { env: productionEnv(databaseUrl, port), port })
  server.child.kill('SIGINT')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('SIGTERM under load: every request in flight gets its normal answer, and the exit beats kill_timeout', async (t) => {
  const databaseUrl = await createMigratedDatabase(t)
  const port = await freePort()
  // Explicit opt-out: this test is about shutdown, and 20 sign-ups from one address would hit the sign-up limit.
  const server = await spawnServer(t, { env: { ...productionEnv(databaseUrl, port), RATE_LIMIT: 'off' }, port })

  // 20 sign-ups on their own connections, each with half its body sent: in flight when the signal comes.
  const requests = Array.from({ length: 20 }, (_, i) => {
    const body = JSON.stringify({ email: `load-${i}@example.com`, password: 'a long enough password', name: 'Load' })
    let req!: ReturnType<typeof request>
    const answer = new Promise<{ status: number, email?: string }>((resolve, reject) => {
      req = request(`${server.url}/api/auth/sign-up/email`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), origin: TRUSTED_ORIGIN }
      }, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => { text += chunk.toString() })
        res.on('end', () => resolve({ status: res.statusCode!, email: JSON.parse(text).user?.email }))
      })
      req.on('error', reject)
      req.write(body.slice(0, 20))
    })
    return { answer, finish: () => req.end(body.slice(20)) }
  })
  // The server has received all 20 (it logs each request once its headers are in).
  t.equal(await signUpsReceived(server, 20), 20, 'all 20 requests reached the server')

  const signalledAt = Date.now()
  server.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  for (const { finish } of requests) finish()

  const results = await Promise.all(requests.map(({ answer }) => answer))
  t.same(results.map((result) => result.status), Array(20).fill(200), 'all 20 answered 200')
  t.same(results.map((result) => result.email).sort(), Array.from({ length: 20 }, (_, i) => `load-${i}@example.com`).sort())
  const { code } = await server.exited
  const shutdownMs = Date.now() - signalledAt
  t.equal(code, 0)
  t.comment(`shutdown with 20 sign-ups in flight took ${shutdownMs} ms`)
  t.ok(shutdownMs < 15_000, 'exited before fly.toml\'s kill_timeout (15 s)')
})

t.test('SIGTERM after clients gave up: their sign-ups still finish, audit events and mail included', async (t) => {
  const databaseUrl = await createMigratedDatabase(t)
  const port = await freePort()
  const mailServer = await startMailServer(t)
  const server = await spawnServer(t, { env: { ...productionEnv(databaseUrl, port), ...mailEnv(mailServer), RATE_LIMIT: 'off' }, port })

  // Complete sign-ups whose clients hang up at once, as a browser does when its tab closes: Fastify's close no longer
  // waits for them (their connections are gone), but their handlers are still hashing passwords.
  const emails = Array.from({ length: 8 }, (_, i) => `abandoned-${i}@example.com`)
  const abandoned = emails.map((email) => {
    const body = JSON.stringify({ email, password: 'a long enough password', name: 'Gone' })
    const req = request(`${server.url}/api/auth/sign-up/email`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), origin: TRUSTED_ORIGIN }
    })
    req.on('error', () => {})
    req.end(body)
    return req
  })
  t.equal(await signUpsReceived(server, emails.length), emails.length, 'every sign-up reached the server')
  for (const req of abandoned) req.destroy()
  server.child.kill('SIGTERM')

  const { code } = await server.exited
  t.equal(code, 0, 'a clean exit')
  const errors = server.output().split('\n').filter((line) => /"level":(50|60)/.test(line))
  t.same(errors, [], 'nothing failed: no request used the database after it closed')
  const users = await query(databaseUrl, 'select email from "user" where email like \'abandoned-%\' order by email')
  t.same(users.rows.map((row) => row.email), emails.slice().sort(), 'every abandoned sign-up was written')
  const events = await query(databaseUrl, 'select count(*)::int as count from audit_event where type = \'sign_up\'')
  t.equal(events.rows[0].count, emails.length, 'and its audit event')
  t.same(mailServer.messages.flatMap((mail) => mail.to).sort(), emails.slice().sort(), 'and its verification mail')
})

/** How many sign-ups the server has received (it logs each once its headers are in), waiting up to 10 s for `expected`. */
async function signUpsReceived (server: { output: () => string }, expected: number): Promise<number> {
  const received = () => server.output().split('\n').filter((line) => line.includes('"url":"/api/auth/sign-up/email"')).length
  for (const deadline = Date.now() + 10_000; received() < expected && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 5))
  return received()
}
