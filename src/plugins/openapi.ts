import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

export const OPENAPI_JSON_PATH = '/api/openapi.json'
export const REFERENCE_PATH = '/api/docs'

type OpenAPIDocument = {
  paths?: Record<string, unknown>
  components?: Record<string, Record<string, unknown> | undefined>
  tags?: Array<{ name: string, description?: string }>
}

/**
 * Swagger UI's page files. The bundled server (dist/server.mjs) carries its own copy beside it, dist/swagger-ui
 * (scripts/bundle.ts), so the image needs no node_modules; from source they are read from the package.
 */
function swaggerUiFiles (): string {
  const bundled = fileURLToPath(new URL('./swagger-ui/', import.meta.url))
  if (existsSync(join(bundled, 'index.html'))) return bundled
  return join(dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui/package.json')), 'static')
}

// One OpenAPI document for the whole service: our routes (from their Fastify schemas) plus Better Auth's endpoints
// (from its openAPI plugin) under /api/auth. Served as JSON and as a Swagger UI page whose assets ship with the
// package (no CDN).
export default fp(async function openapiPlugin (app) {
  const auth = await app.auth.api.generateOpenAPISchema() as OpenAPIDocument
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: `${app.config.app.name} API (pond-backend)`,
        version: '1',
        description: 'Our own routes (tag pond-backend) and Better Auth under /api/auth. Browsers authenticate with ' +
          'the HttpOnly session cookie set by sign-in; send requests with credentials from a trusted origin.'
      },
      servers: [{ url: app.config.auth.baseURL }],
      tags: [{ name: 'pond-backend', description: 'Health checks and our own session-protected routes' }]
    },
    // (Cast: @fastify/swagger types the document per OpenAPI version; the merge only adds paths and components.)
    transformObject: (document) => mergeBetterAuth((document as { openapiObject: OpenAPIDocument }).openapiObject, auth) as never
  })
  const files = swaggerUiFiles()
  await app.register(swaggerUi, {
    routePrefix: REFERENCE_PATH,
    // baseDir (and the logo) so that Swagger UI never computes its own folder from __dirname, which the ES module
    // bundle does not have. baseDir also adds a catch-all route for $ref'd files, which this document has none of:
    // it answers our own 404.
    baseDir: files,
    logo: { type: 'image/svg+xml', content: readFileSync(join(files, 'logo.svg')) },
    uiHooks: {
      onRequest: async (request, reply) => {
        if (request.routeOptions.url === `${REFERENCE_PATH}/*`) return reply.callNotFound()
      }
    },
    // Nothing leaves this page: no call to swagger.io's validator.
    uiConfig: { validatorUrl: null },
    // The page's own policy in place of the API's `default-src 'none'`: scripts, styles and fonts from here only
    // (Swagger UI sets some inline styles), and still not frameable.
    staticCSP: true,
    transformStaticCSP: (policy) => policy
      .replace("frame-ancestors 'self'", "frame-ancestors 'none'")
      .replace(' validator.swagger.io', '')
      .replace("font-src 'self' https: data:", "font-src 'self' data:")
      .replace("style-src 'self' https:", "style-src 'self' 'unsafe-inline'")
  })
  app.get(OPENAPI_JSON_PATH, { schema: { hide: true } }, async () => app.swagger())
}, { name: 'openapi', dependencies: ['env', 'auth'], fastify: '5.x' })

function mergeBetterAuth<T extends OpenAPIDocument> (ours: T, auth: OpenAPIDocument): T {
  const authPaths = Object.fromEntries(Object.entries(auth.paths ?? {}).map(([path, item]) => [`/api/auth${path}`, item]))
  return {
    ...ours,
    paths: { ...ours.paths, ...authPaths },
    components: {
      ...ours.components,
      schemas: { ...ours.components?.schemas, ...auth.components?.schemas },
      securitySchemes: { ...ours.components?.securitySchemes, ...auth.components?.securitySchemes }
    },
    tags: [...(ours.tags ?? []), ...(auth.tags ?? [])]
  }
}
