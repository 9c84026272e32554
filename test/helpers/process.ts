import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { projectRoot } from '../../src/config/index.js'

type Test = { teardown: (fn: () => unknown) => void }

export interface ServerProcess {
  child: ChildProcess
  url: string
  /** Everything the process printed so far (stdout and stderr). */
  output: () => string
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface SpawnServerOptions {
  /** Command and arguments; default: the TypeScript server through tsx. */
  command?: string[]
  cwd?: string
  env: Record<string, string | undefined>
  /** The port the process listens on (its PORT). */
  port: number
  /** Wait until this path answers 200 (default /health/ready). */
  readyPath?: string
  readyTimeoutMs?: number
  /** Run as this user (root only). */
  uid?: number
  gid?: number
}

/** Starts a server process, waits until it is ready, and kills it at teardown if it is still running. */
export async function spawnServer (t: Test, options: SpawnServerOptions): Promise<ServerProcess> {
  const [command, ...args] = options.command ?? [process.execPath, '--import', 'tsx', 'src/server.ts']
  const child = spawn(command!, args, {
    cwd: options.cwd ?? projectRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })

  const url = `http://127.0.0.1:${options.port}`
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000)
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready:\n${output}`)
    try {
      const response = await fetch(url + (options.readyPath ?? '/health/ready'))
      if (response.status === 200) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`server not ready in time:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { child, url, output: () => output, exited }
}

/** Runs a command to completion and returns its exit code and output. */
export async function runCommand (command: string[], options: { cwd?: string, env?: Record<string, string | undefined> } = {}) {
  const [file, ...args] = command
  const child = spawn(file!, args, {
    cwd: options.cwd ?? projectRoot,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}
