// Request ids: Fly's when it sends a well-formed one, a generated one otherwise; in the answer and in every log line.
import t from 'tap'
import { buildTestApp, TRUSTED_ORIGIN } from './helpers/app.js'

const { url, logs } = await buildTestApp(t, { listen: true })
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('every answer carries an id, generated ids are unique', async (t) => {
  const answers = await Promise.all([
    fetch(`${url}/health`),
    fetch(`${url}/no/such/route`),
    fetch(`${url}/api/me`),
    // Better Auth's answers go through our proxy route.
    fetch(`${url}/api/auth/get-session`),
    fetch(`${url}/api/auth/sign-in/email`, { method: 'POST', headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' }, body: '{"email":"x@example.com","password":"wrong password!"}' })
  ])
  t.same(answers.map((a) => a.status), [200, 404, 401, 200, 401])
  const ids = answers.map((a) => a.headers.get('x-request-id'))
  for (const id of ids) t.match(id, UUID, 'a random UUID')
  t.equal(new Set(ids).size, ids.length, 'all different')

  const tooLarge = await fetch(`${url}/api/auth/sign-in/email`, { method: 'POST', headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json' }, body: 'x'.repeat(70 * 1024) })
  t.equal(tooLarge.status, 413, 'an answer of the error handler (body limit)')
  t.match(tooLarge.headers.get('x-request-id'), UUID)
})

t.test('Fly\'s fly-request-id is used when well-formed, replaced when not', async (t) => {
  const fly = '01J9ZQ8M4T6V2X3Y5W7K9N0P1R-ams'
  const echoed = await fetch(`${url}/no/such/route`, { headers: { 'fly-request-id': fly } })
  t.equal(echoed.headers.get('x-request-id'), fly)

  for (const bad of ['a'.repeat(129), 'has space', 'new\u00e9line', 'semi;colon', '<script>', '']) {
    const answer = await fetch(`${url}/health`, { headers: { 'fly-request-id': bad } })
    t.match(answer.headers.get('x-request-id'), UUID, `${JSON.stringify(bad.slice(0, 20))} is replaced`)
  }
  const longest = 'b'.repeat(128)
  t.equal((await fetch(`${url}/health`, { headers: { 'fly-request-id': longest } })).headers.get('x-request-id'), longest, '128 characters are fine')
})

t.test('every log line of a request carries its id', async (t) => {
  const id = 'req-log-check-1'
  const start = logs.length
  const answer = await fetch(`${url}/api/auth/sign-in/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', 'fly-request-id': id },
    body: JSON.stringify({ email: 'nobody@example.com', password: 'wrong password!' })
  })
  t.equal(answer.status, 401)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const lines = logs.slice(start).filter((line) => line.req !== undefined || line.res !== undefined || line.responseTime !== undefined)
  t.ok(lines.some((line) => line.msg === 'incoming request'), 'the incoming-request line')
  t.ok(lines.some((line) => line.msg === 'request completed'), 'the request-completed line')
  for (const line of lines) t.equal(line.reqId, id, `"${String(line.msg)}" has the id`)
  // Better Auth's own lines, which it writes without a request in hand.
  const betterAuth = logs.slice(start).filter((line) => line.component === 'better-auth')
  t.same(betterAuth.map((line) => [line.msg, line.reqId]), [['User not found', id]], 'Better Auth\'s line has the id')

  // Mail goes out after the answer, and its line still names the request that asked for it.
  const signUpId = 'req-log-check-mail'
  const signUpStart = logs.length
  const signUp = await fetch(`${url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', 'fly-request-id': signUpId },
    body: JSON.stringify({ email: 'request-id-mail@example.com', password: 'a long enough password', name: 'Mail' })
  })
  t.equal(signUp.status, 200)
  let mailLines: typeof logs = []
  for (let waited = 0; mailLines.length === 0 && waited < 5_000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    mailLines = logs.slice(signUpStart).filter((line) => line.component === 'mailer')
  }
  t.same(mailLines.map((line) => line.reqId), [signUpId], 'the mail line has the sign-up\'s id')

  // An answer of the error handler.
  const failing = 'req-log-check-2'
  const start2 = logs.length
  const tooLarge = await fetch(`${url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { origin: TRUSTED_ORIGIN, 'content-type': 'application/json', 'fly-request-id': failing },
    body: 'x'.repeat(70 * 1024)
  })
  t.equal(tooLarge.status, 413)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const own = logs.slice(start2).filter((line) => line.reqId === failing)
  t.ok(own.length >= 2, `${own.length} lines with the id`)
  t.notOk(logs.slice(start2).some((line) => (line.req !== undefined || line.res !== undefined) && line.reqId !== failing),
    'no request line without it')
})
