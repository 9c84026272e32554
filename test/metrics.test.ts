// Prometheus metrics: scraped from their own port after real traffic, the numbers move exactly as the traffic says.
import { once } from 'node:events'
import t from 'tap'
import { RATE_LIMITS } from '../src/auth/create-auth.js'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { buildTestApp, freePort, TRUSTED_ORIGIN } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { moved, parseExposition, value } from './helpers/metrics.js'

const SIGN_IN_MAX = RATE_LIMITS.customRules['/sign-in/*'].max

t.test('METRICS_PORT must not be the public PORT', async (t) => {
  const error = t.throws(() => loadConfig({ env: { PORT: '4000', METRICS_PORT: '4000' } }), ConfigError)
  t.match((error as ConfigError).lines, [/^METRICS_PORT must differ from PORT \(4000\)/])
})

t.test('without METRICS_PORT nothing is collected or served', async (t) => {
  const { app } = await buildTestApp(t, { migrate: false })
  t.equal(app.metrics, undefined)
})

t.test('after real traffic, the scrape says exactly what happened', async (t) => {
  const metricsPort = await freePort()
  // Behind a trusted proxy, so each client below has its own rate-limit budget (its X-Forwarded-For).
  const { app, url, logs } = await buildTestApp(t, {
    listen: true,
    env: { METRICS_PORT: String(metricsPort), HOST: '127.0.0.1', RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1' }
  })
  const server = app.metrics!.server
  if (!server.listening) await once(server, 'listening')
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
  const scrape = async () => {
    const response = await fetch(metricsUrl)
    t.equal(response.status, 200, 'the metrics port serves /metrics')
    t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
    return parseExposition(await response.text())
  }

  t.equal((await fetch(`${url}/metrics`)).status, 404, 'the public port does not serve /metrics')
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404, 'the metrics port serves nothing else')

  const before = await scrape()
  for (const name of ['pond_db_pool_connections_total', 'pond_db_pool_connections_idle', 'pond_db_pool_requests_waiting',
    'pond_process_resident_memory_bytes', 'pond_nodejs_eventloop_lag_p99_seconds', 'pond_nodejs_heap_size_used_bytes']) {
    t.ok(before.some((s) => s.name === name), `${name} is exported`)
  }
  t.ok(value(before, 'pond_db_pool_connections_total') >= 1, 'the pool holds a connection (the migration used one)')
  t.equal(value(before, 'pond_auth_sign_ins_total', { method: 'email', outcome: 'failed' }), 0, 'counters start at 0')

  const ada = browserClient(url, TRUSTED_ORIGIN)
  const adaIp = { 'x-forwarded-for': '198.51.100.1' }
  const email = 'ada@example.com'
  t.equal((await ada.post('/api/auth/sign-up/email', { email, password: 'correct horse battery', name: 'Ada' }, adaIp)).status, 200)
  t.equal((await ada.post('/api/auth/sign-in/email', { email, password: 'correct horse battery' }, adaIp)).status, 200)
  t.equal((await ada.get('/api/me', adaIp)).status, 200)
  for (let i = 0; i < 2; i++) {
    t.equal((await browserClient(url).post('/api/auth/sign-in/email', { email, password: 'wrong password!' }, adaIp)).status, 401)
  }
  t.equal((await fetch(`${url}/no/such/route/${Math.random()}`)).status, 404)

  // A password reset, requested and completed (the console transport writes the link to the log).
  t.equal((await ada.post('/api/auth/request-password-reset', { email }, adaIp)).status, 200)
  let token: string | undefined
  for (let i = 0; i < 100 && token === undefined; i++) {
    token = logs.map((line) => /\/api\/auth\/reset-password\/([^?\s]+)/.exec(String(line.msg))?.[1]).find(Boolean)
    if (token === undefined) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(token, 'the reset link was written to the log')
  t.equal((await ada.post('/api/auth/reset-password', { newPassword: 'a brand new password', token }, adaIp)).status, 200)

  // Another client spends its sign-in budget: SIGN_IN_MAX failures, then a 429.
  const mallory = browserClient(url)
  const malloryIp = { 'x-forwarded-for': '198.51.100.2' }
  for (let i = 0; i < SIGN_IN_MAX; i++) {
    t.equal((await mallory.post('/api/auth/sign-in/email', { email, password: `guess ${i} guess` }, malloryIp)).status, 401)
  }
  t.equal((await mallory.post('/api/auth/sign-in/email', { email, password: 'one more guess' }, malloryIp)).status, 429)

  const after = await scrape()
  const delta = (name: string, labels?: Record<string, string>) => moved(before, after, name, labels)
  t.equal(delta('pond_auth_sign_ups_total'), 1, 'one sign-up')
  t.equal(delta('pond_auth_sign_ins_total', { method: 'email', outcome: 'succeeded' }), 1, 'one successful sign-in')
  t.equal(delta('pond_auth_sign_ins_total', { method: 'email', outcome: 'failed' }), 2 + SIGN_IN_MAX, 'every wrong password')
  t.equal(delta('pond_auth_sign_ins_total', { method: 'email', outcome: 'two_factor_required' }), 0)
  t.equal(delta('pond_auth_sign_ins_total', { method: 'social' }), 0, 'no social sign-in')
  t.equal(delta('pond_rate_limited_requests_total'), 1, 'one request refused with 429 (not counted as a failed sign-in)')
  t.equal(delta('pond_auth_password_resets_total', { stage: 'requested' }), 1)
  t.equal(delta('pond_auth_password_resets_total', { stage: 'completed' }), 1)

  const requests = (method: string, route: string, status: number) =>
    delta('pond_http_request_duration_seconds_count', { method, route, status_code: String(status) })
  t.equal(requests('GET', '/api/me', 200), 1, '/api/me by its route template')
  t.equal(requests('GET', 'unmatched', 404), 1, 'an unknown path under one fixed label')
  t.equal(requests('POST', '/api/auth/sign-up/email', 200), 1, 'Better Auth\'s endpoints by their own path')
  t.equal(requests('POST', '/api/auth/sign-in/email', 200), 1)
  t.equal(requests('POST', '/api/auth/sign-in/email', 401), 2 + SIGN_IN_MAX)
  t.equal(requests('POST', '/api/auth/sign-in/email', 429), 1)
  t.equal(delta('pond_http_request_duration_seconds_count'), 2 + 1 + 2 + 1 + 2 + SIGN_IN_MAX + 1,
    'every request counted once, the scrapes not at all')
  t.notOk(after.some((s) => s.labels.route?.includes('no/such')), 'no path of an unmatched request becomes a label')
  const bucket = value(after, 'pond_http_request_duration_seconds_bucket', { method: 'GET', route: '/api/me', status_code: '200', le: '+Inf' })
  t.equal(bucket, value(after, 'pond_http_request_duration_seconds_count', { method: 'GET', route: '/api/me', status_code: '200' }))
  t.ok(value(after, 'pond_http_request_duration_seconds_sum', { route: '/api/me' }) > 0, 'durations are recorded')

  await app.close()
  t.notOk(server.listening, 'the metrics server closes with the app')
})
