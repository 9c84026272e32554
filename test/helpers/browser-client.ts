import makeFetchCookie from 'fetch-cookie'
import { CookieJar } from 'tough-cookie'
import { TRUSTED_ORIGIN } from './app.js'

/** A client that behaves like a browser page on `origin`: it keeps cookies and sends an Origin header. */
export function browserClient (baseUrl: string, origin = TRUSTED_ORIGIN) {
  const jar = new CookieJar()
  const fetchWithCookies = makeFetchCookie(fetch, jar)
  async function request (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await fetchWithCookies(new URL(path, baseUrl), {
      method,
      headers: {
        origin,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      redirect: 'manual'
    })
    const text = await response.text()
    return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) }
  }
  return {
    jar,
    cookies: () => jar.getCookies(baseUrl),
    get: (path: string, headers?: Record<string, string>) => request('GET', path, undefined, headers),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => request('POST', path, body, headers)
  }
}
