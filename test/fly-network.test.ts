// The server as fly.toml runs it (its own [env], FLY_APP_NAME set, so TRUST_PROXY=fly): Fly's proxy reaches the
// public port over the machine's private IPv4 address; everything on the private network (6PN) comes over IPv6.
// A forged Fly-Client-IP from an IPv6 peer must buy no attempts, and Fly's scraper must reach the metrics over IPv6.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parse as parseToml } from 'smol-toml'
import { RATE_LIMITS } from '../src/auth/create-auth.js'
import { projectRoot } from '../src/config/index.js'
import { createMigratedDatabase, freePort, TEST_SECRET } from './helpers/app.js'
import { startMailServer } from './helpers/mail-server.js'
import { spawnServer } from './helpers/process.js'

const flyEnv = (parseToml(readFileSync(join(projectRoot, 'fly.toml'), 'utf8')) as { env: Record<string, string> }).env
const frontend = flyEnv.TRUSTED_ORIGINS!.split(',')[0]!
const SIGN_IN_MAX = RATE_LIMITS.customRules['/sign-in/*'].max

async function startFlyServer (t: Test, overrides: Record<string, string> = {}) {
  const [databaseUrl, port, metricsPort, mail] = await Promise.all([createMigratedDatabase(t), freePort(), freePort(), startMailServer(t)])
  const server = await spawnServer(t, {
    port,
    env: {
      ...flyEnv,
      // Set by Fly on every machine, and by the guide's secrets.
      FLY_APP_NAME: 'pond-backend',
      DATABASE_URL: databaseUrl,
      BETTER_AUTH_SECRET: TEST_SECRET,
      SMTP_URL: mail.url,
      // Free ports instead of fly.toml's 8080 and 9091; everything else as the file says.
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      ...overrides
    }
  })
  return { ...server, port, metricsPort }
}

const signIn = (base: string, flyClientIp: string) => fetch(`${base}/api/auth/sign-in/email`, {
  method: 'POST',
  headers: { origin: frontend, 'content-type': 'application/json', 'fly-client-ip': flyClientIp },
  body: JSON.stringify({ email: 'victim@example.com', password: 'a wrong guess' })
}).then((response) => response.status)

t.test('fly.toml: the public port is IPv4 only, the metrics answer over IPv6', async (t) => {
  t.equal(flyEnv.HOST, '0.0.0.0')
  const server = await startFlyServer(t)
  t.equal((await fetch(`http://127.0.0.1:${server.port}/health`)).status, 200, 'IPv4, as Fly\'s proxy comes')
  await t.rejects(fetch(`http://[::1]:${server.port}/health`), 'over IPv6 (6PN) the public port does not answer')
  const metrics = await fetch(`http://[::1]:${server.metricsPort}/metrics`)
  t.equal(metrics.status, 200, 'Fly\'s scraper reaches the metrics over IPv6')
  t.match(await metrics.text(), /^# HELP /m)
})

t.test('a forged Fly-Client-IP over IPv6 buys no attempts, even with the public port on ::', async (t) => {
  // An older fly.toml (HOST "::") put the public port on 6PN: the peer check alone must hold.
  const server = await startFlyServer(t, { HOST: '::' })
  const statuses: number[] = []
  for (let i = 0; i < SIGN_IN_MAX + 4; i++) statuses.push(await signIn(`http://[::1]:${server.port}`, `203.0.113.${i + 1}`))
  t.same(statuses.slice(0, SIGN_IN_MAX), Array(SIGN_IN_MAX).fill(401), 'the budget: wrong passwords')
  t.same(statuses.slice(SIGN_IN_MAX), Array(4).fill(429), 'then refused, whatever Fly-Client-IP says')

  // Over IPv4 (Fly's proxy) the header is the client: another client still has its own budget.
  t.equal(await signIn(`http://127.0.0.1:${server.port}`, '198.51.100.77'), 401)
})
