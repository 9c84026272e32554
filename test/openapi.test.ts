import t from 'tap'
import { buildTestApp } from './helpers/app.js'

const { app, url } = await buildTestApp(t, { listen: true })

t.test('one OpenAPI document: our routes and Better Auth\'s, at /api/openapi.json', async (t) => {
  const response = await fetch(`${url}/api/openapi.json`)
  t.equal(response.status, 200)
  const document = await response.json() as {
    openapi: string
    servers: Array<{ url: string }>
    paths: Record<string, Record<string, { tags?: string[], responses?: Record<string, unknown> }>>
    components: { schemas: Record<string, unknown> }
  }
  t.match(document.openapi, /^3\.1\./)
  t.same(document.servers, [{ url }], 'paths are relative to BETTER_AUTH_URL')

  // Our own routes, with their answers described.
  t.same(Object.keys(document.paths['/health'] ?? {}), ['get'])
  t.same(Object.keys(document.paths['/health/ready']?.get?.responses ?? {}), ['200', '503'])
  t.same(Object.keys(document.paths['/api/me']?.get?.responses ?? {}), ['200', '401'])
  t.notOk(Object.keys(document.paths).some((path) => path.includes('*')), 'the /api/auth/* proxy route is not listed as such')

  // Better Auth's endpoints, plugins included, under the prefix they are served at.
  for (const path of ['/api/auth/sign-up/email', '/api/auth/sign-in/email', '/api/auth/get-session', '/api/auth/request-password-reset',
    '/api/auth/two-factor/enable', '/api/auth/admin/ban-user', '/api/auth/list-sessions']) {
    t.ok(document.paths[path], path)
  }
  t.ok(document.components.schemas.User, 'Better Auth\'s schemas are included')

  // Every documented path of ours exists (no stale entries): each answers something other than our 404.
  for (const path of Object.keys(document.paths).filter((path) => !path.startsWith('/api/auth/'))) {
    const answer = await app.inject({ method: 'GET', url: path })
    t.not(answer.json().code, 'NOT_FOUND', `${path} is served`)
  }
})

t.test('reference pages: /api/docs (assets served here) and Better Auth\'s /api/auth/reference', async (t) => {
  const docs = await fetch(`${url}/api/docs`)
  t.equal(docs.status, 200)
  const html = await docs.text()
  t.match(html, /swagger/i)
  const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g)].map((match) => match[1]!)
  t.ok(scripts.length > 0, 'the page loads scripts')
  for (const src of scripts) {
    t.notMatch(src, /^https?:/, `${src} comes from this server, not a CDN`)
    const asset = await fetch(new URL(src, `${url}/api/docs/`))
    t.equal(asset.status, 200, `${src} is served`)
    // Read it all: an unread 1.6 MB body holds the connection open, and closing the app would wait for it.
    t.ok((await asset.arrayBuffer()).byteLength > 0, `${src} is not empty`)
  }
  const initializer = await fetch(`${url}/api/docs/static/swagger-initializer.js`)
  t.match(await initializer.text(), /json/, 'the UI loads our document')

  const betterAuthReference = await fetch(`${url}/api/auth/reference`)
  t.equal(betterAuthReference.status, 200)
  t.match(betterAuthReference.headers.get('content-type'), /text\/html/)
})
