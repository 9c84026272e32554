import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { settleWithin } from '../settle-within.js'

/** How long closing waits for requests whose clients have gone: its share of the shutdown (src/server.ts). */
export const DRAIN_TIMEOUT_MS = 3_000

/**
 * Fastify's close waits for open connections, not for handlers whose client has hung up: an abandoned sign-up still
 * hashes its password, then writes the user, its audit event and its mail. This counts each request from onRequest to
 * onSend (which runs once the handler has its answer, whether or not anyone is still listening), and on close waits
 * for the count to reach zero. Registered after the database and the mailer, so its onClose runs before theirs.
 */
export default fp(async function requestsInFlightPlugin (app) {
  const counted = new WeakSet<FastifyRequest>()
  let count = 0
  let onDrained: (() => void) | undefined

  app.addHook('onRequest', (request, _reply, done) => {
    counted.add(request)
    count++
    done()
  })
  app.addHook('onSend', (request, _reply, payload, done) => {
    // onSend runs again when an answer is replaced by an error's: count each request once.
    if (counted.delete(request) && --count === 0) onDrained?.()
    done(null, payload)
  })

  app.addHook('onClose', async () => {
    if (count === 0) return
    app.log.info({ requests: count }, 'waiting for requests whose clients have gone')
    const drained = new Promise<void>((resolve) => { onDrained = resolve })
    if (!await settleWithin([drained], DRAIN_TIMEOUT_MS)) app.log.warn({ requests: count }, `requests still running after ${DRAIN_TIMEOUT_MS} ms: closing anyway`)
  })
}, { name: 'requests-in-flight', dependencies: ['db', 'mailer'], fastify: '5.x' })
