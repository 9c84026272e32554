// Child processes of the bench: every server under test runs in its own process, writing to a log file (never a pipe
// the harness would have to drain). All of them are tracked so that any way out of the run stops them.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { openSync, closeSync } from 'node:fs'
import { request } from 'node:http'
export { freePort } from '../../test/helpers/ports.js'

const running = new Set<ChildProcess>()

export interface Child {
  name: string
  process: ChildProcess
  pid: number
  url: string
  port: number
  logFile: string
  exited: Promise<void>
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop: (graceMs?: number) => Promise<void>
}

export interface StartOptions {
  name: string
  node: string
  args: string[]
  env: Record<string, string | undefined>
  port: number
  logFile: string
  cwd: string
  /** Starts the process some other way (./vm-memory.ts: inside a memory cgroup). */
  wrap?: Wrap
}

export type Wrap = (command: string, args: string[]) => { command: string, args: string[] }
const unwrapped: Wrap = (command, args) => ({ command, args })

/**
 * Spawns `node args…` (through `wrap`) with exactly `env` (plus PATH and HOME), stderr (and stdout unless piped)
 * appended to `logFile`; tracked until it exits, so that stopAll() reaches it.
 */
function spawnTracked (node: string, args: string[], { env, cwd, logFile, wrap = unwrapped, stdin, stdout }:
  { env: Record<string, string | undefined>, cwd: string, logFile: string, wrap?: Wrap, stdin: 'pipe' | 'ignore', stdout: 'pipe' | 'log' }): ChildProcess {
  const fd = openSync(logFile, 'a')
  const launch = wrap(node, args)
  const child = spawn(launch.command, launch.args, {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: [stdin, stdout === 'log' ? fd : 'pipe', fd]
  })
  closeSync(fd)
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

/** SIGTERM, then SIGKILL if `child` has not exited within `graceMs`. */
async function terminate (child: ChildProcess, exited: Promise<unknown>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** A server: `node args…` listening on `port`. */
export function start ({ name, node, args, env, port, logFile, cwd, wrap }: StartOptions): Child {
  // stdin is a pipe so that our own servers can exit when the harness dies without cleaning up.
  const child = spawnTracked(node, args, { env, cwd, logFile, wrap, stdin: 'pipe', stdout: 'log' })
  const exited = once(child, 'exit').then(() => {}, () => {})
  const stop = (graceMs = 5_000) => terminate(child, exited, graceMs)
  return { name, process: child, pid: child.pid!, url: `http://127.0.0.1:${port}`, port, logFile, exited, stop }
}

/** Stops every child still running (the harness's `finally`, Ctrl-C, an uncaught error). */
export async function stopAll (): Promise<void> {
  await Promise.all([...running].map((child) => terminate(child, once(child, 'exit'), 3_000)))
}


/** The status of one GET (no keep-alive), or undefined when nothing answers. */
export function getStatus (url: string, { timeoutMs = 1_000, headers = {} }: { timeoutMs?: number, headers?: Record<string, string> } = {}): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: timeoutMs, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
      res.on('error', () => resolve(undefined))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** Polls `url` every `intervalMs` until it answers 200; fails if the child exits first or time runs out. */
export async function waitFor200 (child: Child, path: string, { timeoutMs = 30_000, intervalMs = 20, headers = {} as Record<string, string> } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited with ${child.process.exitCode} before it was ready (see ${child.logFile})`)
    if (await getStatus(child.url + path, { headers }) === 200) return
    if (Date.now() > deadline) throw new Error(`${child.name} not ready within ${timeoutMs} ms (see ${child.logFile})`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** `node --version` of the binary the servers run on. */
export function nodeVersion (node: string): string {
  return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
}

/** Runs `node args…` to completion (tracked like the servers) and returns what it printed on stdout. */
export function runToCompletion (node: string, args: string[], { env, cwd, logFile, wrap }: { env: Record<string, string | undefined>, cwd: string, logFile: string, wrap?: Wrap }): Promise<string> {
  const child = spawnTracked(node, args, { env, cwd, logFile, wrap, stdin: 'ignore', stdout: 'pipe' })
  let stdout = ''
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code === 0) resolve(stdout)
      else reject(new Error(`${args.join(' ')} exited with ${code} (see ${logFile})`))
    })
  })
}
