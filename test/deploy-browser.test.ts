// The end of docs/DEPLOY.md, in Debian's Chromium: the server with fly.toml's own [env] and the guide's secrets, the
// frontend at https://app.pond.example.com and this service at https://auth.pond.example.com (the guide's domain
// step), TLS ended by a stand-in for Fly's proxy that forwards over IPv4 with Fly-Client-IP, as Fly's does. Sign up,
// follow the emailed link, and the page is signed in. Beside it, the pairing fly.toml used to ship (the service on
// <app>.fly.dev, the frontend on another domain): sign-in answers 200 and the browser never sends the cookie.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parse as parseToml } from 'smol-toml'
import { startWebExample } from '../examples/web/server.js'
import { projectRoot } from '../src/config/index.js'
import { createMigratedDatabase, freePort, TEST_SECRET } from './helpers/app.js'
import { browserSkipReason, launchChromium, openPage, settled, signUpOnExamplePage } from './helpers/browser.js'
import { startMailServer } from './helpers/mail-server.js'
import { spawnServer } from './helpers/process.js'
import { selfSignedCertificate } from './helpers/tls.js'

const fly = parseToml(readFileSync(join(projectRoot, 'fly.toml'), 'utf8')) as { app: string, env: Record<string, string> }
const PASSWORD = 'correct horse battery'
const HOSTS = ['app.pond.example.com', 'auth.pond.example.com', 'pond.example.com', `${fly.app}.fly.dev`]

const skipReason = browserSkipReason()
if (skipReason) {
  t.comment(skipReason)
  t.plan(0, skipReason)
} else {
  await run()
}

async function run () {
  const proxy = await startFlyProxyStandIn(t)
  // Every name resolves to loopback, where the stand-in listens: the browser still sees these host names.
  const browser = await launchChromium(t, { args: [`--host-resolver-rules=${HOSTS.map((host) => `MAP ${host} 127.0.0.1`).join(', ')}`] })

  t.test('the guide\'s domains: sign up, follow the emailed link, signed in on the frontend', async (t) => {
    const site = await deploy(t, proxy, { service: 'auth.pond.example.com', frontend: 'app.pond.example.com' })
    const page = await openPage(t, browser, { ignoreHTTPSErrors: true })
    const email = `guide-${Date.now()}@example.com`
    await signUpOnExamplePage(page, site.frontendUrl, { email, password: PASSWORD })
    t.equal(await page.locator('#status').textContent(), 'Signed out', 'production waits for the address to be verified')

    const mail = await site.mail.waitForMail(email, { subject: /confirm/i })
    t.ok(mail.link?.startsWith(`${site.serviceUrl}/api/auth/verify-email?`), 'the link goes to BETTER_AUTH_URL')
    await page.goto(mail.link!)
    await page.waitForURL(`${site.frontendUrl}/**`)
    await settled(page)
    t.equal(await page.locator('#status').textContent(), `Signed in as ${email}`, '/api/me answers the frontend with the user')

    const [cookie] = (await page.context().cookies(site.serviceUrl)).filter((candidate) => candidate.name.endsWith('better-auth.session_token'))
    t.match(cookie, { name: '__Secure-better-auth.session_token', domain: 'auth.pond.example.com', secure: true, httpOnly: true, sameSite: 'Lax' })
    await page.reload()
    await settled(page)
    t.equal(await page.locator('#status').textContent(), `Signed in as ${email}`, 'and after a reload')
  })

  t.test('the service on <app>.fly.dev, the frontend elsewhere: sign-in answers 200, the browser drops the session', async (t) => {
    const site = await deploy(t, proxy, { service: `${fly.app}.fly.dev`, frontend: 'pond.example.com' })
    const page = await openPage(t, browser, { ignoreHTTPSErrors: true })
    const email = `fly-dev-${Date.now()}@example.com`
    await signUpOnExamplePage(page, site.frontendUrl, { email, password: PASSWORD })
    const mail = await site.mail.waitForMail(email, { subject: /confirm/i })
    await page.goto(mail.link!)
    await page.waitForURL(`${site.frontendUrl}/**`)
    await settled(page)
    t.equal(await page.locator('#status').textContent(), 'Signed out', 'verified, yet /api/me gets no cookie')

    const form = page.locator('#sign-in')
    await form.locator('[name=email]').fill(email)
    await form.locator('[name=password]').fill(PASSWORD)
    const signIn = page.waitForResponse((response) => response.url().endsWith('/api/auth/sign-in/email'))
    await form.locator('button').click()
    t.equal((await signIn).status(), 200, 'the password is right')
    await settled(page)
    t.equal(await page.locator('#status').textContent(), 'Signed out', 'and the page is still signed out: two sites')
  })
}

/** A stand-in for Fly's proxy: TLS for every name, then plain HTTP to the machine over IPv4 with Fly-Client-IP. */
async function startFlyProxyStandIn (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'pond-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { key, cert } = selfSignedCertificate(dir, HOSTS)
  const routes = new Map<string, number>()
  const server = createHttpsServer({ key, cert }, (request, response) => {
    const port = routes.get((request.headers.host ?? '').replace(/:\d+$/, ''))
    if (port === undefined) return response.writeHead(502).end()
    const upstream = httpRequest({
      host: '127.0.0.1',
      port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, 'fly-client-ip': '198.51.100.23', 'x-forwarded-proto': 'https' }
    }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(response)
    })
    upstream.on('error', () => response.writeHead(502).end())
    request.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  return { port: (server.address() as AddressInfo).port, routes }
}

/** fly.toml's [env] with the guide's secrets and the given domains, served through the stand-in. */
async function deploy (t: Test, proxy: Awaited<ReturnType<typeof startFlyProxyStandIn>>, hosts: { service: string, frontend: string }) {
  const [databaseUrl, port, metricsPort, mail] = await Promise.all([createMigratedDatabase(t), freePort(), freePort(), startMailServer(t)])
  const serviceUrl = `https://${hosts.service}:${proxy.port}`
  const frontendUrl = `https://${hosts.frontend}:${proxy.port}`
  await spawnServer(t, {
    port,
    env: {
      ...fly.env,
      FLY_APP_NAME: fly.app,
      DATABASE_URL: databaseUrl,
      BETTER_AUTH_SECRET: TEST_SECRET,
      SMTP_URL: mail.url,
      BETTER_AUTH_URL: serviceUrl,
      TRUSTED_ORIGINS: frontendUrl,
      PORT: String(port),
      METRICS_PORT: String(metricsPort)
    }
  })
  const web = await startWebExample({ apiUrl: serviceUrl, port: 0 })
  t.teardown(web.close)
  proxy.routes.set(hosts.service, port)
  proxy.routes.set(hosts.frontend, Number(new URL(web.url).port))
  t.teardown(() => { proxy.routes.delete(hosts.service); proxy.routes.delete(hosts.frontend) })
  return { serviceUrl, frontendUrl, mail }
}
