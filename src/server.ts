// The process: logger, listen, signals. The application itself is built by ./app.ts.
import { buildApp } from './app.js'
import { lowerThreadPoolPriority } from './auth/password-hashing.js'
import { ConfigError } from './config/index.js'
import { EmbeddedPostgresError } from './db/embedded-postgres.js'
import { loggerOptions } from './logger.js'

// Shorter than fly.toml's kill_timeout, so Fly never kills us mid-shutdown. Within it, closing waits for the open
// connections' requests, then for requests whose clients have gone (3 s at most), audit writes (1 s) and queued mail
// (4 s), then ends the pool.
export const SHUTDOWN_DELAY_MS = 10_000

const isProduction = process.env.NODE_ENV === 'production'

async function main () {
  let app
  try {
    // LOG_LEVEL is applied by the env plugin once it is validated.
    app = await buildApp({
      logger: loggerOptions({ isProduction, logLevel: 'info' }, { pretty: process.stdout.isTTY }),
      dotenv: !isProduction
    })
  } catch (error) {
    if (error instanceof ConfigError || error instanceof EmbeddedPostgresError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
    throw error
  }

  // The process's thread pool, once: hashing yields to the event loop (./auth/password-hashing.ts).
  try {
    const lowered = await lowerThreadPoolPriority()
    app.log.debug({ threads: lowered.length }, 'thread pool below the event loop\'s priority')
  } catch (error) {
    // Only latency under load depends on it: the service works without.
    app.log.warn({ err: error }, 'could not lower the thread pool\'s priority')
  }

  // One graceful close per process. A terminal's Ctrl-C reaches both `node --watch` and this process, which then
  // gets the signal twice: later signals are noted, not obeyed; the delay bounds the whole shutdown.
  let closing = false
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return app.log.info({ signal }, 'already shutting down')
    closing = true
    app.log.info({ signal }, 'shutting down: finishing requests in flight')
    setTimeout(() => {
      app.log.error(`shutdown took longer than ${SHUTDOWN_DELAY_MS} ms: exiting`)
      process.exit(1)
    }, SHUTDOWN_DELAY_MS).unref()
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)

  await app.listen({ port: app.config.port, host: app.config.host })
}

await main()
