import type { AddressInfo } from 'node:net'
import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

type Test = { teardown: (fn: () => unknown) => void }

export interface ReceivedMail {
  to: string[]
  from: string
  subject: string
  text: string
  html: string
  /** The first http(s) link of the text part. */
  link: string | undefined
}

/**
 * A real SMTP server in this process (smtp-server), receiving what the service sends through nodemailer.
 * `state.rejectMail` makes it answer every message with a permanent failure (550); `state.rejectRecipients` refuses
 * every recipient, naming it in the reply.
 */
export async function startMailServer (t: Test) {
  const messages: ReceivedMail[] = []
  const waiters = new Set<() => void>()
  const state = { rejectMail: false, rejectRecipients: false }

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo (address, _session, callback) {
      // As Postfix does for an unknown user: the reply repeats the address.
      if (!state.rejectRecipients) return callback()
      callback(Object.assign(new Error(`5.1.1 <${address.address}>: Recipient address rejected: User unknown`), { responseCode: 550 }))
    },
    onData (stream, session, callback) {
      simpleParser(stream).then((parsed) => {
        if (state.rejectMail) return callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }))
        const text = parsed.text ?? ''
        messages.push({
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          from: parsed.from?.text ?? '',
          subject: parsed.subject ?? '',
          text,
          html: typeof parsed.html === 'string' ? parsed.html : '',
          link: /https?:\/\/\S+/.exec(text)?.[0]
        })
        for (const wake of waiters) wake()
        callback()
      }, callback)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.server.address() as AddressInfo

  /** The next message to `to` (optionally matching `subject`) that arrives, or one already here and not yet taken. */
  async function waitForMail (to: string, { subject, timeoutMs = 15_000 }: { subject?: RegExp, timeoutMs?: number } = {}) {
    const matches = (mail: ReceivedMail) => mail.to.includes(to) && (subject === undefined || subject.test(mail.subject))
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = messages.findIndex(matches)
      if (index !== -1) return messages.splice(index, 1)[0]!
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new Error(`no mail to ${to}${subject ? ` matching ${subject}` : ''} within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const wake = () => { waiters.delete(wake); clearTimeout(timer); resolve() }
        const timer = setTimeout(wake, remaining)
        waiters.add(wake)
      })
    }
  }

  return {
    url: `smtp://127.0.0.1:${port}`,
    /** Messages received and not yet taken by waitForMail. */
    messages,
    waitForMail,
    state
  }
}

/** The environment that makes the service send through `mailServer`. */
export function mailEnv (mailServer: { url: string }) {
  return { MAIL_TRANSPORT: 'smtp', SMTP_URL: mailServer.url, MAIL_FROM: 'Pond <no-reply@pond.example>' }
}
