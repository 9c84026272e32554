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
