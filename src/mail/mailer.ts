import type { FastifyBaseLogger } from 'fastify'
import nodemailer from 'nodemailer'
import type { Config } from '../config/index.js'
import { requestLog, withoutAddresses } from '../logger.js'
import { settleWithin } from '../settle-within.js'

export interface MailMessage {
  to: string
  subject: string
  text: string
  html: string
  /** What the message is for (verify-email, reset-password, ...): logged instead of the content. */
  kind: string
}

export interface Mailer {
  /**
   * Queues a message and returns at once: the HTTP answer never waits for the mail server (that would be slower,
   * and timing would tell whether an account exists). A failure is logged, never thrown to the caller.
   */
  sendLater: (message: MailMessage) => void
  /** Waits for queued messages (up to `timeoutMs`), then closes the transport. */
  close: (timeoutMs?: number) => Promise<void>
}

/** How long closing waits for mail still being sent: its share of the shutdown (src/server.ts). */
export const MAIL_CLOSE_WAIT_MS = 4_000

/** MAIL_TRANSPORT=console writes the message to the log (development); smtp sends it through nodemailer. */
export function createMailer (config: Pick<Config, 'mail'>, log: FastifyBaseLogger): Mailer {
  const { mail } = config
  const transport = mail.transport === 'smtp'
    ? nodemailer.createTransport(mail.smtpUrl, { from: mail.from })
    : undefined
  const pending = new Set<Promise<void>>()

  async function send (message: MailMessage, log: FastifyBaseLogger) {
    if (transport === undefined) {
      // Development only (refused in production): the link is the point of this line.
      log.info({ mail: { kind: message.kind, to: message.to, subject: message.subject } }, `mail (console transport):\n${message.text}`)
      return
    }
    const { to, subject, text, html } = message
    const info = await transport.sendMail({ to, subject, text, html })
    log.info({ mail: { kind: message.kind, messageId: info.messageId } }, 'mail sent')
  }

  return {
    sendLater (message) {
      // Sent after the answer, but logged with the id of the request that asked for it.
      const messageLog = requestLog(undefined)?.child({ component: 'mailer' }) ?? log
      const delivery = send(message, messageLog).catch((error: Error) => {
        // The address and content stay out of the log; the kind and the reason are enough to act on. SMTP servers
        // repeat the recipient in their replies ("550 <someone@example.com>: User unknown"), so addresses go too.
        const { code, responseCode, command } = error as { code?: string, responseCode?: number, command?: string }
        messageLog.error({ mail: { kind: message.kind }, err: { code, responseCode, command, message: withoutAddresses(error.message) } },
          'mail could not be sent')
      }).finally(() => pending.delete(delivery))
      pending.add(delivery)
    },
    async close (timeoutMs = MAIL_CLOSE_WAIT_MS) {
      await settleWithin(pending, timeoutMs)
      if (pending.size > 0) log.warn({ count: pending.size }, 'closing with mail still being sent')
      transport?.close()
    }
  }
}
