// `pnpm build`'s second step: the server and the scripts the image runs, each one self-contained ES module file,
// so the runtime image carries no node_modules at all. Node resolves and loads ~1,000 files for the unbundled
// server; one file starts in about half the time and memory (docs/BENCHMARKS.md), and Fly starts stopped machines
// on demand.
import { cpSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { build, type BuildOptions } from 'esbuild'

const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // pg-native is an optional part of pg we do not use.
  external: ['pg-native'],
  // Bundled CommonJS dependencies call require() for Node's modules.
  banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
  logLevel: 'warning'
}

await build({ ...common, entryPoints: ['dist/src/server.js'], outfile: 'dist/server.mjs' })
// The scripts replace their tsc output in place: `node dist/scripts/migrate.js` is fly.toml's release_command, and
// the doctor and user:admin run on a machine through `fly ssh console`.
await build({
  ...common,
  entryPoints: ['dist/scripts/migrate.js', 'dist/scripts/doctor.js', 'dist/scripts/user-admin.js'],
  outdir: 'dist/scripts',
  allowOverwrite: true
})
// Swagger UI serves its page from files; the bundle finds them beside it (src/plugins/openapi.ts).
const swaggerUi = dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui/package.json'))
cpSync(join(swaggerUi, 'static'), 'dist/swagger-ui', { recursive: true })
