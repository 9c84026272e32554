// The example page's script, bundled for the browser by server.ts. It talks to pond-backend the way a Pond
// frontend would: Better Auth's official client for /api/auth/*, plain fetch for our own routes, cookies included.
import { createAuthClient } from 'better-auth/client'

/** pond-backend's base URL, put in at bundle time (server.ts). */
declare const POND_API_URL: string

const authClient = createAuthClient({
  baseURL: POND_API_URL,
  // The session cookie belongs to pond-backend's origin: send it on every cross-origin call.
  fetchOptions: { credentials: 'include' }
})

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const statusLine = element('status')
const errorLine = element('error')

function showError (error: { message?: string, code?: string, statusText?: string } | null) {
  errorLine.textContent = error === null ? '' : (error.message ?? error.statusText ?? 'Something went wrong')
  errorLine.dataset.code = error?.code ?? ''
}

/** Shows who is signed in, as our own session-protected route /api/me sees it. */
async function showCurrentUser () {
  const response = await fetch(new URL('/api/me', POND_API_URL), { credentials: 'include' })
  const signedIn = response.ok
  const body = await response.json()
  if (!signedIn && response.status !== 401) showError(body)
  statusLine.textContent = signedIn ? `Signed in as ${body.user.email}` : 'Signed out'
  element('me').textContent = signedIn ? JSON.stringify(body, null, 2) : ''
  element('signed-in').hidden = !signedIn
  element('signed-out').hidden = signedIn
}

/** Runs a user action; the page is aria-busy until its result is shown (tests wait for that too). */
async function busy (action: () => Promise<void>) {
  document.body.setAttribute('aria-busy', 'true')
  try {
    await action()
  } catch (error) {
    showError({ message: `pond-backend is not reachable at ${POND_API_URL} (${(error as Error).message})` })
    statusLine.textContent = 'Offline'
  } finally {
    document.body.setAttribute('aria-busy', 'false')
  }
}

function formValues (form: HTMLFormElement) {
  return Object.fromEntries(new FormData(form)) as Record<string, string>
}

element<HTMLFormElement>('sign-up').addEventListener('submit', (event) => {
  event.preventDefault()
  const { name = '', email = '', password = '' } = formValues(event.currentTarget as HTMLFormElement)
  busy(async () => {
    const { error } = await authClient.signUp.email({ name, email, password })
    showError(error)
    await showCurrentUser()
  })
})

element<HTMLFormElement>('sign-in').addEventListener('submit', (event) => {
  event.preventDefault()
  const { email = '', password = '' } = formValues(event.currentTarget as HTMLFormElement)
  busy(async () => {
    const { error } = await authClient.signIn.email({ email, password })
    showError(error)
    await showCurrentUser()
  })
})

element('sign-out').addEventListener('click', () => busy(async () => {
  const { error } = await authClient.signOut()
  showError(error)
  await showCurrentUser()
}))

busy(showCurrentUser)
