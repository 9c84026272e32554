import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))

export interface WebExampleOptions {
  /** pond-backend's base URL, which the page calls. */
  apiUrl: string
  /** 0 picks a free port. */
  port: number
  host?: string
}

/**
 * Serves the example page and its script, bundled once with esbuild. The page's origin is
 * http://localhost:<port>: it must be in pond-backend's TRUSTED_ORIGINS, and the API must be reached through the
 * same host name (localhost and 127.0.0.1 are different sites to a browser, which then drops every cookie).
 */
export async function startWebExample ({ apiUrl, port, host = '127.0.0.1' }: WebExampleOptions) {
  const bundle = await build({
    entryPoints: [here('app.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    define: { POND_API_URL: JSON.stringify(apiUrl) },
    logLevel: 'silent'
  })
  const files: Record<string, { type: string, body: string | Uint8Array }> = {
    '/': { type: 'text/html; charset=utf-8', body: await readFile(here('index.html'), 'utf8') },
    '/app.js': { type: 'text/javascript; charset=utf-8', body: bundle.outputFiles[0]!.contents }
  }

  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? '/', 'http://page').pathname]
    response.setHeader('cache-control', 'no-store')
    if (file === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found')
    } else {
      response.writeHead(200, { 'content-type': file.type }).end(file.body)
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const { port: actualPort } = server.address() as AddressInfo
  return {
    url: `http://localhost:${actualPort}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}
