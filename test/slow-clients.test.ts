// Slow and oversized requests are answered and cut off (408/413/431/400, JSON), never held open.
import { connect } from 'node:net'
import t from 'tap'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'

// Production's limits, with the timeouts shortened so the test takes seconds (production: 10 s for headers, 30 s in
// all; see serverOptions in src/app.ts).
const { url } = await buildTestApp(t, {
  listen: true,
  server: { requestTimeout: 1_500, http: { headersTimeout: 1_000, connectionsCheckingInterval: 200 } }
})
const { port } = new URL(url)

/** Writes `chunks` (the next one after `gapMs`), then reads until the server closes the connection. */
function rawExchange (chunks: Array<string | Buffer>, gapMs = 0): Promise<{ head: string, body: string, closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const socket = connect(Number(port), '127.0.0.1')
    let received = ''
    socket.on('data', (data) => { received += data.toString() })
    socket.on('error', () => {})
    socket.on('close', () => {
      const [head = '', body = ''] = received.split('\r\n\r\n')
      resolve({ head, body, closedAfterMs: Date.now() - started })
    })
    socket.once('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) break
        socket.write(chunk)
        if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs))
      }
    })
    setTimeout(() => { socket.destroy(); reject(new Error(`still open after 10 s; got: ${received}`)) }, 10_000).unref()
  })
}

t.test('headers that never finish: 408, and the connection is closed', async (t) => {
  const { head, body } = await rawExchange(['GET /api/me HTTP/1.1\r\nHost: localhost\r\n', 'X-Slow: 1\r\n'], 100)
  t.match(head, /^HTTP\/1.1 408 /)
  t.same(JSON.parse(body), { code: 'REQUEST_TIMEOUT', message: 'The request did not arrive in time.' })
})

t.test('a body that stops arriving: 408', async (t) => {
  const request = `POST /api/auth/sign-in/email HTTP/1.1\r\nHost: localhost\r\nOrigin: ${TRUSTED_ORIGIN}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"email":'
  const { head, body } = await rawExchange([request])
  t.match(head, /^HTTP\/1.1 408 /)
  t.match(JSON.parse(body), { code: 'REQUEST_TIMEOUT' })
})

t.test('bodies over the limits: 413 JSON, before the whole body is read', async (t) => {
  const auth = await fetch(`${url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'x'.repeat(70 * 1024) })
  })
  t.equal(auth.status, 413)
  t.match(await auth.json(), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })

  // A declared length over the limit is refused up front.
  const { head, body } = await rawExchange([`POST /api/auth/sign-up/email HTTP/1.1\r\nHost: localhost\r\nOrigin: ${TRUSTED_ORIGIN}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${50 * 1024 * 1024}\r\nConnection: close\r\n\r\n{`])
  t.match(head, /^HTTP\/1.1 413 /)
  t.match(JSON.parse(body), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
})

t.test('headers too large: 431 JSON; not HTTP at all: 400 JSON', async (t) => {
  const big = await rawExchange([`GET /health HTTP/1.1\r\nHost: localhost\r\nCookie: ${'a'.repeat(20_000)}\r\n\r\n`])
  t.match(big.head, /^HTTP\/1.1 431 /)
  t.match(JSON.parse(big.body), { code: 'HEADERS_TOO_LARGE' })

  const garbage = await rawExchange(['\u0000\u0001 not http at all\r\n\r\n'])
  t.match(garbage.head, /^HTTP\/1.1 400 /)
  t.match(JSON.parse(garbage.body), { code: 'MALFORMED_REQUEST' })
})

t.test('the server still answers afterwards', async (t) => {
  t.equal((await fetch(`${url}/health`)).status, 200)
})
