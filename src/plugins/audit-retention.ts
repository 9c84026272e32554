import fp from 'fastify-plugin'
import { pruneEvents } from '../audit/events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes audit events older than AUDIT_RETENTION_DAYS now; resolves to how many. Never rejects. */
    pruneAuditEvents: () => Promise<number>
  }
}

export const AUDIT_PRUNE_INTERVAL_MS = 60 * 60 * 1000

/** Prunes the audit trail at start and then hourly; every machine does it, which is harmless (see pruneEvents). */
export default fp(async function auditRetention (app) {
  let running: Promise<number> | undefined
  const prune = () => {
    // One run at a time per process: an hourly tick during a long run waits for it instead of starting another.
    running ??= pruneEvents(app.pg, app.config.auditRetentionDays)
      .then((deleted) => {
        if (deleted > 0) app.log.info({ deleted, retentionDays: app.config.auditRetentionDays }, 'audit events pruned')
        return deleted
      }, (error: Error & { code?: string }) => {
        // Before `pnpm migrate` the table may not exist yet; the next run tries again.
        app.log.warn({ err: { code: error.code, message: error.message } }, 'audit events not pruned')
        return 0
      })
      .finally(() => { running = undefined })
    return running
  }
  app.decorate('pruneAuditEvents', prune)

  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    void prune()
    timer = setInterval(() => { void prune() }, AUDIT_PRUNE_INTERVAL_MS).unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}, { name: 'audit-retention', dependencies: ['env', 'db'], fastify: '5.x' })
