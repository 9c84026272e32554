import fp from 'fastify-plugin'
import { createMailer, type Mailer } from '../mail/mailer.js'

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

// Email out of the service (verification, password reset, account deletion): console in development, SMTP otherwise.
export default fp(async function mailerPlugin (app) {
  const mailer = createMailer(app.config, app.log.child({ component: 'mailer' }))
  app.decorate('mailer', mailer)
  // Messages queued by the last requests still go out during a graceful shutdown.
  app.addHook('onClose', async () => mailer.close())
  if (app.config.mail.transport === 'console') app.log.info('mail goes to this log (MAIL_TRANSPORT=console)')
}, { name: 'mailer', dependencies: ['env'], fastify: '5.x' })
