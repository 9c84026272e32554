// Every `pnpm <name>` the docs tell a user to type must do what they say. pnpm 12 runs its own built-in command
// when one has the name (`pnpm doctor` never reached our doctor), so a script of ours may not share a built-in's
// name, and a name that is neither a script nor a built-in is a typo.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { projectRoot } from '../src/config/index.js'
import { runCommand } from './helpers/process.js'

// Built-ins that run the package's script of the same name (pnpm help: test, start, stop, restart).
const RUN_THE_SCRIPT = new Set(['test', 'start', 'stop', 'restart'])

const scripts = Object.keys((JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts)

const docs = ['README.md', '.env.example', 'fly.toml', 'Dockerfile',
  ...readdirSync(join(projectRoot, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

/** pnpm's built-in commands and their aliases, read from the installed pnpm's own help. */
async function builtins (): Promise<Set<string>> {
  const { code, stdout } = await runCommand(['pnpm', 'help'], { env: { PATH: process.env.PATH, HOME: process.env.HOME } })
  if (code !== 0) throw new Error(`pnpm help exited ${code}`)
  const names = new Set<string>()
  for (const line of stdout.split('\n')) {
    const command = /^ {2}([a-z][a-z-]*) {2,}(.*)$/.exec(line)
    if (command === null) continue
    names.add(command[1]!)
    const aliases = /\[alias(?:es)?: ([^\]]+)\]/.exec(command[2]!)?.[1]
    for (const alias of aliases?.split(',') ?? []) names.add(alias.trim())
  }
  return names
}

t.test('every `pnpm <name>` in the docs runs what the docs mean', async (t) => {
  const builtin = await builtins()
  t.ok(builtin.has('doctor') && builtin.has('install'), 'pnpm help was read (it lists doctor and install)')
  for (const script of scripts) {
    t.ok(!builtin.has(script) || RUN_THE_SCRIPT.has(script), `script "${script}" is not shadowed by a pnpm built-in`)
  }
  let mentions = 0
  for (const file of docs) {
    const text = readFileSync(join(projectRoot, file), 'utf8')
    for (const [, name] of text.matchAll(/\bpnpm ([a-z][\w:-]*)/g)) {
      mentions++
      if (name === 'run' || name === 'exec') continue
      const ok = scripts.includes(name!) ? (!builtin.has(name!) || RUN_THE_SCRIPT.has(name!)) : builtin.has(name!)
      t.ok(ok, `${file}: \`pnpm ${name}\` ${scripts.includes(name!) ? 'reaches our script' : 'is a pnpm command'}`)
    }
  }
  t.ok(mentions > 10, `the docs were read (${mentions} mentions)`)
  t.ok(scripts.includes('preflight') && !builtin.has('preflight'), 'the doctor has a name of its own')
})
