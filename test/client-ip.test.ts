import t from 'tap'
import { buildTestApp } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'

const forged = { 'x-forwarded-for': '198.51.100.1', 'x-pond-client-ip': '198.51.100.2', 'x-real-ip': '198.51.100.3' }

async function sessionIp (url: string, databaseUrl: string, email: string, headers: Record<string, string>) {
  const signUp = await browserClient(url).post('/api/auth/sign-up/email', { email, password: 'a long enough password', name: 'Ip' }, headers)
  if (signUp.status !== 200) throw new Error(signUp.text)
  const { rows } = await query(databaseUrl,
    'SELECT s."ipAddress" FROM session s JOIN "user" u ON u.id = s."userId" WHERE u.email = $1', [email])
  return rows[0].ipAddress as string
}

t.test('off Fly, Better Auth sees the socket address, whatever headers the client sends', async (t) => {
  const { url, databaseUrl } = await buildTestApp(t, { listen: true })
  t.equal(await sessionIp(url, databaseUrl, 'socket@example.com', { ...forged, 'fly-client-ip': '198.51.100.4' }), '127.0.0.1')
})

t.test('on Fly, Better Auth sees Fly-Client-IP, not the forgeable headers', async (t) => {
  const { url, databaseUrl } = await buildTestApp(t, { listen: true, env: { FLY_APP_NAME: 'pond-backend' } })
  t.equal(await sessionIp(url, databaseUrl, 'fly@example.com', { ...forged, 'fly-client-ip': '203.0.113.9' }), '203.0.113.9')
})

t.test('TRUST_PROXY=header:X-Real-IP: the header our proxy sets; an absent or invalid value falls back to the socket', async (t) => {
  const { url, databaseUrl } = await buildTestApp(t, { listen: true, env: { TRUST_PROXY: 'header:X-Real-IP' } })
  t.equal(await sessionIp(url, databaseUrl, 'real-ip@example.com', { 'x-real-ip': '203.0.113.7', 'x-forwarded-for': '198.51.100.1' }), '203.0.113.7')
  t.equal(await sessionIp(url, databaseUrl, 'real-ip-bad@example.com', { 'x-real-ip': '203.0.113.7; drop table' }), '127.0.0.1')
  t.equal(await sessionIp(url, databaseUrl, 'real-ip-none@example.com', {}), '127.0.0.1')
})

t.test('TRUST_PROXY=<proxies>: X-Forwarded-For read from the right, past trusted proxies only', async (t) => {
  const { url, databaseUrl, logs } = await buildTestApp(t, { listen: true, env: { TRUST_PROXY: '127.0.0.1,10.0.0.0/8' } })
  // The client wrote the first two entries itself; 10.1.2.3 is one of our proxies; 203.0.113.50 is the client.
  const chain = '1.1.1.1, 2.2.2.2, 203.0.113.50, 10.1.2.3'
  t.equal(await sessionIp(url, databaseUrl, 'chain@example.com', { 'x-forwarded-for': chain }), '203.0.113.50')
  t.equal(await sessionIp(url, databaseUrl, 'no-xff@example.com', {}), '127.0.0.1', 'no header: the socket address')

  // The logs show the same address Better Auth used.
  const lines = logs.filter((line) => (line.req as { url?: string } | undefined)?.url === '/api/auth/sign-up/email')
  t.same(lines.map((line) => (line.req as { remoteAddress: string }).remoteAddress), ['203.0.113.50', '127.0.0.1'])
})

t.test('a proxy that is not listed is not trusted: its X-Forwarded-For is ignored', async (t) => {
  const { url, databaseUrl } = await buildTestApp(t, { listen: true, env: { TRUST_PROXY: '10.0.0.0/8' } })
  t.equal(await sessionIp(url, databaseUrl, 'untrusted-hop@example.com', { 'x-forwarded-for': '203.0.113.60' }), '127.0.0.1')
})
