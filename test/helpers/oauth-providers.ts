import { createHash, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import type { CookieJar } from 'tough-cookie'
import { getGlobalDispatcher, MockAgent, setGlobalDispatcher } from 'undici'

type Test = { teardown: (fn: () => unknown) => void }

/** OAuth apps as registered at GitHub and Google (fake credentials: only the fakes below accept them). */
export const GITHUB_APP = { clientId: 'Iv1.pond0test0github', clientSecret: 'github-secret-0123456789abcdef0123456789' }
export const GOOGLE_APP = {
  clientId: '1234567890-pondtest.apps.googleusercontent.com',
  clientSecret: 'GOCSPX-google-secret-0123456789'
}
/** The variables that turn both providers on. */
export const SOCIAL_ENV = {
  GITHUB_CLIENT_ID: GITHUB_APP.clientId,
  GITHUB_CLIENT_SECRET: GITHUB_APP.clientSecret,
  GOOGLE_CLIENT_ID: GOOGLE_APP.clientId,
  GOOGLE_CLIENT_SECRET: GOOGLE_APP.clientSecret
}

/** What GitHub knows about a user: GET /user and GET /user/emails. */
export interface GitHubUser {
  id: number
  login: string
  name: string | null
  /** The public profile email; often null (GitHub's default for private addresses). */
  email: string | null
  emails: Array<{ email: string, primary: boolean, verified: boolean }>
}

/** The claims Google puts in the id_token about a user. */
export interface GoogleUser {
  sub: string
  email: string
  email_verified: boolean
  name: string
  picture?: string
}

/** A request the provider's server received, with what it answered. */
export interface ProviderRequest {
  provider: 'github' | 'google'
  method: string
  url: string
  headers: Record<string, string>
  /** Form fields of a token request. */
  form?: URLSearchParams
  status: number
  answer: unknown
}

interface Grant {
  provider: 'github' | 'google'
  user: GitHubUser | GoogleUser
  redirectUri: string
  codeChallenge: string | null
  codeChallengeMethod: string | null
  used: boolean
}

const AUTHORIZATION_ENDPOINTS = {
  github: 'https://github.com/login/oauth/authorize',
  google: 'https://accounts.google.com/o/oauth2/v2/auth'
}

/**
 * Fakes for the servers of GitHub and Google, at the HTTP layer: every `fetch` in this process to another host
 * than the loopback goes to undici's MockAgent (Node's fetch uses the global dispatcher), which answers for
 * github.com, api.github.com, oauth2.googleapis.com and www.googleapis.com and refuses anything else. The test
 * server on localhost is reached over the real network.
 *
 * Like the real servers, the fakes check what they receive: client credentials, a code they issued and have not
 * redeemed, the redirect_uri of the authorization request, the PKCE verifier against its challenge, the bearer
 * token. Whatever they refuse is answered the provider's way (and recorded), so a wrong request fails the flow.
 */
export function fakeOAuthProviders (t: Test) {
  const previous = getGlobalDispatcher()
  const agent = new MockAgent()
  agent.disableNetConnect()
  agent.enableNetConnect(/^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/)
  setGlobalDispatcher(agent)
  t.teardown(async () => {
    setGlobalDispatcher(previous)
    await agent.close()
  })

  const requests: ProviderRequest[] = []
  const grants = new Map<string, Grant>()
  const accessTokens = new Map<string, GitHubUser>()
  const googleKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const googleKid = randomBytes(20).toString('hex')

  /** Records the request and builds the reply. */
  function answer (provider: ProviderRequest['provider'], opts: ReplyOptions, respond: (request: ProviderRequest) => [number, unknown]) {
    const request: ProviderRequest = {
      provider,
      method: opts.method,
      url: `${opts.origin ?? ''}${opts.path}`,
      headers: headerRecord(opts.headers),
      status: 0,
      answer: undefined
    }
    if (opts.method === 'POST') request.form = new URLSearchParams(bodyText(opts.body))
    const [status, data] = respond(request)
    Object.assign(request, { status, answer: data })
    requests.push(request)
    return { statusCode: status, data: JSON.stringify(data), responseOptions: { headers: { 'content-type': 'application/json; charset=utf-8' } } }
  }

  /** Checks a token request as the provider does; returns the grant, or the OAuth error code. */
  function redeem (provider: 'github' | 'google', app: { clientId: string, clientSecret: string }, form: URLSearchParams): Grant | string {
    if (form.get('grant_type') !== 'authorization_code') return 'unsupported_grant_type'
    if (form.get('client_id') !== app.clientId || form.get('client_secret') !== app.clientSecret) return 'invalid_client'
    const grant = grants.get(form.get('code') ?? '')
    if (grant === undefined || grant.provider !== provider || grant.used) return provider === 'github' ? 'bad_verification_code' : 'invalid_grant'
    grant.used = true
    if (form.get('redirect_uri') !== grant.redirectUri) return 'redirect_uri_mismatch'
    if (grant.codeChallenge !== null) {
      const verifier = form.get('code_verifier') ?? ''
      const challenge = createHash('sha256').update(verifier).digest('base64url')
      if (grant.codeChallengeMethod !== 'S256' || challenge !== grant.codeChallenge) return 'invalid_grant'
    }
    return grant
  }

  const github = agent.get('https://github.com')
  github.intercept({ path: '/login/oauth/access_token', method: 'POST' }).reply((opts) => answer('github', opts, (request) => {
    const grant = redeem('github', GITHUB_APP, request.form!)
    // GitHub answers errors of the code exchange with 200 and an `error` field.
    if (typeof grant === 'string') return [200, { error: grant, error_description: 'The code passed is incorrect or expired.' }]
    const accessToken = `gho_${randomBytes(18).toString('hex')}`
    accessTokens.set(accessToken, grant.user as GitHubUser)
    return [200, { access_token: accessToken, token_type: 'bearer', scope: 'read:user,user:email' }]
  })).persist()

  const githubApi = agent.get('https://api.github.com')
  for (const path of ['/user', '/user/emails']) {
    githubApi.intercept({ path, method: 'GET' }).reply((opts) => answer('github', opts, (request) => {
      const user = accessTokens.get(request.headers.authorization?.replace(/^Bearer /, '') ?? '')
      if (user === undefined) return [401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' }]
      if (path === '/user/emails') return [200, user.emails.map((email) => ({ ...email, visibility: email.primary ? 'private' : null }))]
      return [200, {
        login: user.login,
        id: user.id,
        node_id: `U_${user.id}`,
        avatar_url: `https://avatars.githubusercontent.com/u/${user.id}?v=4`,
        html_url: `https://github.com/${user.login}`,
        type: 'User',
        site_admin: false,
        name: user.name,
        company: null,
        blog: '',
        location: null,
        email: user.email,
        bio: null,
        public_repos: 3,
        followers: 1,
        following: 0,
        created_at: '2015-03-01T10:00:00Z',
        updated_at: '2025-01-01T10:00:00Z'
      }]
    })).persist()
  }

  agent.get('https://oauth2.googleapis.com').intercept({ path: '/token', method: 'POST' }).reply((opts) => answer('google', opts, (request) => {
    const grant = redeem('google', GOOGLE_APP, request.form!)
    if (typeof grant === 'string') return [400, { error: grant, error_description: 'Bad Request' }]
    const accessToken = `ya29.${randomBytes(24).toString('base64url')}`
    return [200, {
      access_token: accessToken,
      expires_in: 3599,
      scope: 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile',
      token_type: 'Bearer',
      id_token: googleIdToken(grant.user as GoogleUser)
    }]
  })).persist()

  // Google's signing keys, for id_tokens a client posts to /sign-in/social.
  agent.get('https://www.googleapis.com').intercept({ path: '/oauth2/v3/certs', method: 'GET' }).reply((opts) => answer('google', opts, () => {
    const jwk = googleKey.publicKey.export({ format: 'jwk' })
    return [200, { keys: [{ ...jwk, kid: googleKid, alg: 'RS256', use: 'sig' }] }]
  })).persist()

  /** An id_token as Google issues it; `claims` and `key` override, to forge one. */
  function googleIdToken (user: GoogleUser, { claims = {}, key = googleKey.privateKey }: { claims?: Record<string, unknown>, key?: KeyObject } = {}) {
    const now = Math.floor(Date.now() / 1000)
    return signJwt({ alg: 'RS256', kid: googleKid, typ: 'JWT' }, {
      iss: 'https://accounts.google.com',
      azp: GOOGLE_APP.clientId,
      aud: GOOGLE_APP.clientId,
      sub: user.sub,
      email: user.email,
      email_verified: user.email_verified,
      at_hash: randomBytes(16).toString('base64url'),
      name: user.name,
      picture: user.picture,
      given_name: user.name.split(' ')[0],
      iat: now,
      exp: now + 3600,
      ...claims
    }, key)
  }

  return {
    requests,
    /** Token requests received so far (successful or not). */
    tokenRequests: () => requests.filter((request) => request.form !== undefined),
    googleIdToken,
    /**
     * The user signs in at the provider and consents: the provider checks the authorization URL our server built
     * (its own endpoint, our client id) and returns the URL it redirects the browser to, with a fresh code.
     */
    authorize (authorizationUrl: string, user: GitHubUser | GoogleUser): string {
      const url = new URL(authorizationUrl)
      const provider = url.origin + url.pathname === AUTHORIZATION_ENDPOINTS.github ? 'github' as const
        : url.origin + url.pathname === AUTHORIZATION_ENDPOINTS.google ? 'google' as const
          : undefined
      if (provider === undefined) throw new Error(`Not an authorization endpoint of GitHub or Google: ${authorizationUrl}`)
      const app = provider === 'github' ? GITHUB_APP : GOOGLE_APP
      const { client_id: clientId, redirect_uri: redirectUri, state } = Object.fromEntries(url.searchParams)
      if (clientId !== app.clientId) throw new Error(`${provider}: unknown client_id ${clientId}`)
      if (redirectUri === undefined || state === undefined) throw new Error(`${provider}: redirect_uri and state are required`)
      const code = randomBytes(10).toString('hex')
      grants.set(code, {
        provider,
        user,
        redirectUri,
        codeChallenge: url.searchParams.get('code_challenge'),
        codeChallengeMethod: url.searchParams.get('code_challenge_method'),
        used: false
      })
      const callback = new URL(redirectUri)
      callback.searchParams.set('code', code)
      callback.searchParams.set('state', state)
      return callback.href
    }
  }
}

export type FakeOAuthProviders = ReturnType<typeof fakeOAuthProviders>

/**
 * The browser follows the provider's redirect back to us: a top-level cross-site navigation, so a GET without
 * Origin, with the Fetch Metadata a browser sends, and only cookies that SameSite=Lax lets through.
 */
export async function navigateFrom (jar: CookieJar, url: string) {
  const cookie = await jar.getCookieString(url, { sameSiteContext: 'lax' })
  const response = await fetch(url, {
    redirect: 'manual',
    headers: {
      ...(cookie === '' ? {} : { cookie }),
      'sec-fetch-site': 'cross-site',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document'
    }
  })
  const setCookies = response.headers.getSetCookie()
  for (const setCookie of setCookies) await jar.setCookie(setCookie, url)
  await response.arrayBuffer()
  return { status: response.status, location: response.headers.get('location'), setCookies }
}

function signJwt (header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const encode = (part: Record<string, unknown>) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const input = `${encode(header)}.${encode(payload)}`
  return `${input}.${createSign('RSA-SHA256').update(input).sign(key).toString('base64url')}`
}

type ReplyOptions = { path: string, method: string, origin?: string, headers?: unknown, body?: unknown }

function headerRecord (headers: unknown): Record<string, string> {
  const entries: Array<[string, string]> = []
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) entries.push([String(headers[i]), String(headers[i + 1])])
  } else if (headers !== null && typeof headers === 'object') {
    const iterable = typeof (headers as Headers).entries === 'function' ? (headers as Headers).entries() : Object.entries(headers)
    for (const [name, value] of iterable) entries.push([name, String(value)])
  }
  return Object.fromEntries(entries.map(([name, value]) => [name.toLowerCase(), value]))
}

function bodyText (body: unknown): string {
  if (body === undefined || body === null) return ''
  if (typeof body === 'string') return body
  if (body instanceof URLSearchParams) return body.toString()
  if (body instanceof Uint8Array || body instanceof ArrayBuffer) return Buffer.from(body as Uint8Array).toString()
  throw new Error(`Unexpected request body type: ${Object.prototype.toString.call(body)}`)
}
