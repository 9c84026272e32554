// The emails the service sends, each with a text and an HTML part. Links come from Better Auth (they carry the
// token) and end on the frontend (see frontendLink in src/auth/create-auth.ts).
import type { MailMessage } from './mailer.js'

interface Recipient { email: string, name?: string | null }

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function message (kind: string, to: Recipient, appName: string, subject: string, lines: string[], action: { label: string, url: string }): MailMessage {
  const greeting = to.name ? `Hello ${to.name},` : 'Hello,'
  const text = [greeting, '', ...lines, '', `${action.label}: ${action.url}`, '', `If you did not ask for this, ignore this email.`, '', `— ${appName}`].join('\n')
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">
<p>${escapeHtml(greeting)}</p>
${lines.map((line) => `<p>${escapeHtml(line)}</p>`).join('\n')}
<p><a href="${escapeHtml(action.url)}">${escapeHtml(action.label)}</a></p>
<p style="color:#666">If you did not ask for this, ignore this email.</p>
<p>— ${escapeHtml(appName)}</p>
</body></html>`
  return { kind, to: to.email, subject: `${appName}: ${subject}`, text, html }
}

export function verifyEmailMessage (appName: string, to: Recipient, url: string) {
  return message('verify-email', to, appName, 'confirm your email address',
    [`Confirm that ${to.email} is your email address for ${appName}. The link works for one hour.`],
    { label: 'Confirm my email address', url })
}

export function resetPasswordMessage (appName: string, to: Recipient, url: string) {
  return message('reset-password', to, appName, 'reset your password',
    [`Someone asked to reset the password of your ${appName} account. The link works for one hour, once.`],
    { label: 'Choose a new password', url })
}

export function confirmEmailChangeMessage (appName: string, to: Recipient, newEmail: string, url: string) {
  return message('confirm-email-change', to, appName, 'confirm changing your email address',
    [`Someone asked to change the email address of your ${appName} account from ${to.email} to ${newEmail}.`,
      'Nothing changes until you confirm here; we will then ask the new address to confirm too.'],
    { label: 'Confirm the change', url })
}

export function deleteAccountMessage (appName: string, to: Recipient, url: string) {
  return message('delete-account', to, appName, 'confirm deleting your account',
    [`Someone asked to delete your ${appName} account and all its sessions. This cannot be undone. The link works for one day.`,
      `Open it in the browser where you are signed in to ${appName}.`],
    { label: 'Delete my account', url })
}
