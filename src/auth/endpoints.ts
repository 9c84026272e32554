import type { HTTPMethods } from 'fastify'
import type { Auth } from './create-auth.js'

/** Where Better Auth is served. */
export const AUTH_PREFIX = '/api/auth'

export interface AuthEndpoint {
  /** Better Auth's path, under AUTH_PREFIX: `/sign-in/email`, `/callback/:id`. */
  path: string
  methods: HTTPMethods[]
}

const ANY_METHOD: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

/**
 * Better Auth's HTTP endpoints, its plugins' included, read from the instance (server-only ones have no path). The
 * server routes exactly these, so a path Better Auth does not serve never reaches it.
 */
export function authEndpoints (auth: Auth): AuthEndpoint[] {
  const endpoints: AuthEndpoint[] = []
  for (const endpoint of Object.values(auth.api) as Array<{ path?: unknown, options?: { method?: unknown } }>) {
    const { path } = endpoint
    if (typeof path !== 'string' || path === '') continue
    const method = endpoint.options?.method
    const methods = method === '*' ? ANY_METHOD : (Array.isArray(method) ? method : [method]).filter((m): m is HTTPMethods => typeof m === 'string')
    endpoints.push({ path, methods })
  }
  return endpoints
}
