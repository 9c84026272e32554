// `pnpm example:web`: pond-backend (as `pnpm dev` runs it) and the example page beside it, so you can use the
// service from a browser. Ctrl-C stops both.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startWebExample } from './server.js'

const WEB_PORT = 5173 // http://localhost:5173 is in the development default of TRUSTED_ORIGINS
const apiUrl = process.env.BETTER_AUTH_URL ?? `http://localhost:${process.env.PORT ?? 3000}`

const backend = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  cwd: fileURLToPath(new URL('../..', import.meta.url)),
  stdio: 'inherit'
})
backend.on('exit', (code, signal) => {
  page?.close()
  process.exit(code ?? (signal === null ? 0 : 1))
})

let page: Awaited<ReturnType<typeof startWebExample>> | undefined
try {
  page = await startWebExample({ apiUrl, port: WEB_PORT, host: 'localhost' })
} catch (error) {
  console.error(`The example page could not listen on port ${WEB_PORT}: ${(error as Error).message}`)
  backend.kill('SIGTERM')
  process.exitCode = 1
}
if (page !== undefined) {
  await waitUntilReady(`${apiUrl}/health/ready`)
  console.log(`\nExample page: ${page.url} (calls pond-backend at ${apiUrl}). Ctrl-C stops both.\n`)
}

// Ctrl-C reaches both processes (same process group); for a plain kill, pass it on. The backend's exit ends us.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => { if (backend.exitCode === null) backend.kill(signal) })
}

async function waitUntilReady (url: string) {
  for (let attempt = 0; attempt < 600 && backend.exitCode === null; attempt++) {
    const ready = await fetch(url).then((response) => response.ok, () => false)
    if (ready) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
