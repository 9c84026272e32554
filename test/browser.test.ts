// The example page (examples/web) in Debian's Chromium against a real pond-backend: what a Pond frontend on another
// origin sees. Both servers use the host name localhost, so the page and the API are the same site, cross-origin.
import t from 'tap'
import type { Page } from 'playwright-core'
import { startWebExample } from '../examples/web/server.js'
import { SESSION_EXPIRES_IN_SECONDS } from '../src/auth/create-auth.js'
import { buildTestApp, freePort } from './helpers/app.js'
import { browserSkipReason, launchChromium, openPage, settled, signUpOnExamplePage } from './helpers/browser.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'

const SESSION_COOKIE = 'better-auth.session_token'
const PASSWORD = 'correct horse battery'

const skipReason = browserSkipReason()
if (skipReason) {
  t.comment(skipReason)
  t.plan(0, skipReason)
} else {
  await runBrowserTests()
}

async function runBrowserTests () {
  const [webPort, untrustedWebPort] = [await freePort(), await freePort()]
  const trustedOrigin = `http://localhost:${webPort}`
  const { url: apiUrl, databaseUrl, logs } = await buildTestApp(t, { listen: true, env: { TRUSTED_ORIGINS: trustedOrigin } })
  const web = await startWebExample({ apiUrl, port: webPort })
  t.teardown(web.close)
  // The same page from an origin that is not trusted: another port of the same host, so the same site.
  const untrustedWeb = await startWebExample({ apiUrl, port: untrustedWebPort })
  t.teardown(untrustedWeb.close)
  const browser = await launchChromium(t)

  let users = 0
  const newEmail = () => `browser-${Date.now()}-${++users}@example.com`

  async function signUpInPage (page: Page, email = newEmail()) {
    await signUpOnExamplePage(page, web.url, { email, password: PASSWORD })
    return email
  }
  const statusOf = (page: Page) => page.locator('#status').textContent()
  const userOf = async (email: string) =>
    (await query(databaseUrl, 'select id, name from "user" where email = $1', [email])).rows[0] as { id: string, name: string }
  const sessionsOf = async (userId: string) =>
    (await query(databaseUrl, 'select id, "expiresAt" from session where "userId" = $1 order by id', [userId])).rows as
      Array<{ id: string, expiresAt: Date }>

  /** Requests the server logged after `from` log lines, with the status it answered. */
  function requestsLoggedSince (from: number) {
    const lines = logs.slice(from) as Array<{ reqId?: string, req?: { method: string, url: string }, res?: { statusCode: number } }>
    return lines.filter((line) => line.req !== undefined).map(({ reqId, req }) => ({
      method: req!.method,
      url: req!.url,
      status: lines.find((line) => line.reqId === reqId && line.res !== undefined)?.res?.statusCode
    }))
  }

  t.test('sign up, see the user, stay signed in across a reload, sign out', async (t) => {
    const page = await openPage(t, browser)
    await page.goto(web.url)
    await settled(page)
    t.equal(await statusOf(page), 'Signed out')

    const email = await signUpInPage(page)
    t.equal(await page.locator('#error').textContent(), '')
    t.equal(await statusOf(page), `Signed in as ${email}`)
    t.match(JSON.parse(await page.locator('#me').textContent() ?? '{}'), { user: { email, name: 'Ada' } })

    await page.reload()
    await settled(page)
    t.equal(await statusOf(page), `Signed in as ${email}`, 'the cookie is sent again after a reload')

    await page.locator('#sign-out').click()
    await settled(page)
    t.equal(await statusOf(page), 'Signed out')
    await page.reload()
    await settled(page)
    t.equal(await statusOf(page), 'Signed out', 'still signed out after a reload')
    t.same(await sessionsOf((await userOf(email)).id), [], 'the session is gone from the database')
  })

  t.test('a wrong password: the page shows the error the service returned', async (t) => {
    const email = newEmail()
    const signUp = await browserClient(apiUrl, trustedOrigin).post('/api/auth/sign-up/email', { name: 'Bo', email, password: PASSWORD })
    t.equal(signUp.status, 200)

    const page = await openPage(t, browser)
    await page.goto(web.url)
    await settled(page)
    const form = page.locator('#sign-in')
    await form.locator('[name=email]').fill(email)
    await form.locator('[name=password]').fill('not the password')
    const [response] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith('/api/auth/sign-in/email')),
      form.locator('button').click()
    ])
    await settled(page)
    const answer = await response.json() as { code: string, message: string }
    t.equal(response.status(), 401)
    t.ok(answer.message, 'the service explains')
    t.equal(await page.locator('#error').textContent(), answer.message)
    t.equal(await page.locator('#error').getAttribute('data-code'), answer.code)
    t.equal(await statusOf(page), 'Signed out')
    t.notOk((await page.context().cookies(apiUrl)).some((cookie) => cookie.name === SESSION_COOKIE))
  })

  t.test('the session cookie as Chromium stores it: HttpOnly, SameSite=Lax, Path=/, configured expiry', async (t) => {
    const page = await openPage(t, browser)
    const signedUpAt = Date.now() / 1000
    const email = await signUpInPage(page)
    const cookies = await page.context().cookies(apiUrl)
    const cookie = cookies.find((cookie) => cookie.name === SESSION_COOKIE)
    if (cookie === undefined) return t.fail(`no ${SESSION_COOKIE} cookie among ${cookies.map((c) => c.name)}`)
    t.match(cookie, { domain: 'localhost', path: '/', httpOnly: true, sameSite: 'Lax', secure: false })
    t.ok(Math.abs(cookie.expires - (signedUpAt + SESSION_EXPIRES_IN_SECONDS)) < 60,
      `expires in ${SESSION_EXPIRES_IN_SECONDS} s (${new Date(cookie.expires * 1000).toISOString()})`)
    const [session] = await sessionsOf((await userOf(email)).id)
    t.ok(Math.abs(cookie.expires - session!.expiresAt.getTime() / 1000) < 2, 'the cookie ends with the session')

    // Cookies ignore ports: the page's own origin holds the cookie, but page script cannot read it.
    t.notMatch(await page.evaluate(() => document.cookie), 'session_token')
  })

  t.test('a page on an untrusted origin reads nothing and changes nothing', async (t) => {
    // The victim signs in on the trusted page; the untrusted page then runs in the same browser (same cookies).
    const trustedPage = await openPage(t, browser)
    const email = await signUpInPage(trustedPage)
    const user = await userOf(email)
    const sessionsBefore = await sessionsOf(user.id)
    t.equal(sessionsBefore.length, 1)

    const page = await trustedPage.context().newPage()
    await page.goto(untrustedWeb.url)
    const logged = logs.length

    // Reads: the browser hides every answer from the page, with or without credentials.
    const reads = await page.evaluate(async (api) => {
      const attempt = (path: string, init: RequestInit) =>
        fetch(new URL(path, api), init).then((response) => `read ${response.status}`, () => 'blocked')
      return {
        me: await attempt('/api/me', { credentials: 'include' }),
        session: await attempt('/api/auth/get-session', { credentials: 'include' }),
        health: await attempt('/health', {})
      }
    }, apiUrl)
    t.same(reads, { me: 'blocked', session: 'blocked', health: 'blocked' })

    // Writes that carry the session cookie.
    const writes = await page.evaluate(async (api) => {
      const attempt = (path: string, init: RequestInit) =>
        fetch(new URL(path, api), { method: 'POST', credentials: 'include', ...init })
          .then((response) => `read ${response.type} ${response.status}`, () => 'blocked')
      const form = { 'content-type': 'application/x-www-form-urlencoded' }
      return {
        // Preflighted: the browser asks first, gets no Allow-Origin, and never sends the POST.
        json: await attempt('/api/auth/update-user', {
          headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Mallory' })
        }),
        // A simple request: sent with the cookie, refused by the server; the page cannot read the answer either.
        simple: await attempt('/api/auth/revoke-sessions', { headers: form, body: '' }),
        // no-cors: the page gets an opaque answer; the server must refuse it on the Origin header alone.
        noCors: await attempt('/api/auth/sign-out', { mode: 'no-cors', headers: form, body: '' })
      }
    }, apiUrl)
    t.same(writes, { json: 'blocked', simple: 'blocked', noCors: 'read opaque 0' })

    // A classic cross-site form POST, a top-level navigation that carries the cookie.
    const [formAnswer] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith('/api/auth/sign-out')),
      page.evaluate((action) => {
        const form = document.createElement('form')
        form.method = 'POST'
        form.action = action
        document.body.append(form)
        form.submit()
      }, new URL('/api/auth/sign-out', apiUrl).href)
    ])
    t.equal(formAnswer.status(), 403, 'the form POST is refused')

    // What the server received, from its own log: each POST arrived once and was refused by the Origin check.
    t.same(requestsLoggedSince(logged).filter((request) => request.method !== 'GET'), [
      // The preflight gets no Access-Control-Allow-Origin, so the browser never sends that POST.
      { method: 'OPTIONS', url: '/api/auth/update-user', status: 204 },
      { method: 'POST', url: '/api/auth/revoke-sessions', status: 403 },
      { method: 'POST', url: '/api/auth/sign-out', status: 403 },
      { method: 'POST', url: '/api/auth/sign-out', status: 403 }
    ], 'the JSON POST was never sent; every other POST was refused')

    t.equal((await userOf(email)).name, 'Ada', 'the name is unchanged')
    t.same(await sessionsOf(user.id), sessionsBefore, 'the session is unchanged')
    await trustedPage.reload()
    await settled(trustedPage)
    t.equal(await statusOf(trustedPage), `Signed in as ${email}`, 'the victim is still signed in')
  })

  t.test('the API reference page renders in Chromium under its own CSP, with no outside requests', async (t) => {
    const page = await openPage(t, browser)
    const violations: string[] = []
    page.on('console', (message) => { if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text()) })
    const outside: string[] = []
    page.on('request', (request) => { if (!request.url().startsWith(apiUrl) && !request.url().startsWith('data:')) outside.push(request.url()) })
    await page.goto(`${apiUrl}/api/docs`)
    await page.locator('.swagger-ui .info .title').waitFor()
    t.match(await page.locator('.swagger-ui .info .title').textContent(), /pond-backend/)
    await page.locator('.opblock-summary-path[data-path="/api/me"]').first().waitFor()
    t.same(violations, [], 'no CSP violations')
    t.same(outside, [], 'everything comes from this service')
  })

  t.test('a preflighted request from the trusted page carries credentials and succeeds', async (t) => {
    const page = await openPage(t, browser)
    const email = await signUpInPage(page)
    const seen = logs.length
    // JSON is not a "simple" content type, so Chromium sends an OPTIONS preflight first.
    const answer = await page.evaluate(async (api) => {
      const response = await fetch(new URL('/api/auth/update-user', api), {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Ada Lovelace' })
      })
      return { status: response.status, body: await response.json() }
    }, apiUrl)
    t.same(answer, { status: 200, body: { status: true } })
    t.equal((await userOf(email)).name, 'Ada Lovelace', 'the signed-in user was updated')

    t.same(requestsLoggedSince(seen), [
      { method: 'OPTIONS', url: '/api/auth/update-user', status: 204 },
      { method: 'POST', url: '/api/auth/update-user', status: 200 }
    ], 'preflight, then the request')
  })
}
