import t from 'tap'
import { redactUrl } from '../src/logger.js'
import { buildTestApp, TEST_SECRET } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'

t.test('credential-bearing URL parts are redacted', async (t) => {
  t.equal(redactUrl('/api/auth/reset-password/abc123?callbackURL=%2Fnew'), '/api/auth/reset-password/[redacted]?callbackURL=%2Fnew')
  t.equal(redactUrl('/api/auth/verify-email?token=eyJhbGc&callbackURL=/'), '/api/auth/verify-email?token=[redacted]&callbackURL=%2F')
  t.equal(redactUrl('/api/auth/callback/github?code=c0de&state=st4te'), '/api/auth/callback/github?code=[redacted]&state=[redacted]')
  t.equal(redactUrl('/health'), '/health')
})

t.test('a whole session at trace level leaves no password, token, cookie or secret in the logs', async (t) => {
  const { url, rawLogs, logs } = await buildTestApp(t, { listen: true, env: { LOG_LEVEL: 'trace' } })
  const browser = browserClient(url)
  const password = 'never-log-this-password'
  const signUp = await browser.post('/api/auth/sign-up/email', { email: 'quiet@example.com', password, name: 'Quiet' })
  const token = signUp.json().token as string
  await browser.get('/api/me')
  await browser.get('/api/auth/get-session', { authorization: 'Bearer some-bearer-token' })
  await browser.post('/api/auth/sign-in/email', { email: 'quiet@example.com', password: 'wrong-password-also-secret' })
  await browser.get(`/api/auth/reset-password/reset-token-in-path?callbackURL=${encodeURIComponent('http://localhost:5173/reset')}`)
  await browser.get('/api/auth/verify-email?token=verify-token-in-query')
  const cookie = await browser.jar.getCookieString(url)
  await browser.post('/api/auth/sign-out')

  const text = rawLogs()
  t.ok(logs.length > 10, `${logs.length} log lines were written`)
  t.ok(logs.some((line) => (line.req as { url?: string } | undefined)?.url?.includes('[redacted]')), 'redacted URLs were logged')
  for (const secret of [password, 'wrong-password-also-secret', token, cookie.split('=')[1]!.split(';')[0]!, 'some-bearer-token',
    'reset-token-in-path', 'verify-token-in-query', TEST_SECRET]) {
    t.notOk(text.includes(secret), `not in the logs: ${secret.slice(0, 6)}…`)
  }
})
