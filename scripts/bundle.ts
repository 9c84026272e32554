// `pnpm build`'s second step: the server as one ES module file, dist/server.mjs, which the Docker image runs.
// Node resolves and loads ~1,000 files for the unbundled server; one file starts in about half the time and memory
// (docs/BENCHMARKS.md), and Fly starts stopped machines on demand.
import { build } from 'esbuild'

await build({
  entryPoints: ['dist/src/server.js'],
  outfile: 'dist/server.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Swagger UI serves its own files from its package folder; pg-native is an optional part of pg we do not use.
  external: ['@fastify/swagger-ui', 'pg-native'],
  // Bundled CommonJS dependencies call require() for Node's modules.
  banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
  logLevel: 'warning'
})
