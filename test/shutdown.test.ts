import { request } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { createMigratedDatabase, freePort, productionEnv, TRUSTED_ORIGIN } from './helpers/app.js'
import { spawnServer } from './helpers/process.js'

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
