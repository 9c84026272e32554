// docs/DEPLOY.md against the configuration schema. What a user has after following the guide on either database
// path, fly.toml's [env] plus the secrets its commands set, must be a configuration the server and the release
// command accept. A variable production starts to require fails this until a step of the guide (or [env]) sets it.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseToml } from 'smol-toml'
import { ConfigError, loadConfig, loadMigrationConfig, projectRoot } from '../src/config/index.js'
import { envSchema, migrationEnvSchema } from '../src/config/schema.js'

const guide = readFileSync(join(projectRoot, 'docs/DEPLOY.md'), 'utf8')
const flyTomlText = readFileSync(join(projectRoot, 'fly.toml'), 'utf8')
const flyToml = parseToml(flyTomlText) as { app: string, env: Record<string, string> }
const known = new Set(Object.keys(envSchema.properties))

/** The guide split at its `##` and `###` headings: heading line → the text under it. */
const sections = guide.split(/^(?=#{2,3} )/m).map((text) => ({ heading: text.split('\n')[0]!, text }))
const section = (prefix: string) => {
  const found = sections.find((candidate) => candidate.heading.startsWith(prefix))
  if (found === undefined) throw new Error(`docs/DEPLOY.md has no section "${prefix}"`)
  return found
}

/** The `fly …` commands a text tells the user to run: lines of its ```sh blocks and inline `fly …` spans. */
function flyCommands (text: string): string[] {
  const blockLines = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1]!.split('\n'))
  const inline = [...text.matchAll(/`(fly [^`]+)`/g)].map((span) => span[1]!)
  return [...blockLines, ...inline].map((line) => line.replace(/\s+/g, ' ').trim()).filter((line) => line.startsWith('fly '))
}

/**
 * A value as the user ends up with it: the shell's `$(openssl rand -base64 32)` run, each `<placeholder>` and `…`
 * filled in with something of the right shape.
 */
function filledIn (value: string): string {
  return value
    .replace(/^"|"$/g, '')
    .replace('$(openssl rand -base64 32)', randomBytes(32).toString('base64'))
    .replace(/<[^>]+>/g, 'x')
    .replace(/…/g, 'x')
}

/**
 * NAME → value for every `fly secrets set NAME=value …` among the commands. A bare `…` stands for the user's own
 * value: it does not replace one an earlier command spelled out.
 */
function secretsSet (commands: string[], before: Record<string, string>): Record<string, string> {
  const secrets: Record<string, string> = {}
  for (const command of commands.filter((line) => line.startsWith('fly secrets set '))) {
    for (const [, name, value] of command.matchAll(/([A-Z][A-Z0-9_]*)=("[^"]*"|\S+)/g)) {
      if (value === '…' && (name! in secrets || name! in before)) continue
      secrets[name!] = filledIn(value!)
    }
  }
  return secrets
}

// The two database paths share every step but the other path's section.
const databasePaths = [
  { name: 'Fly Postgres', own: section('### 2a.'), other: section('### 2b.'), attach: 'fly postgres attach', host: /\.flycast:/ },
  { name: 'Managed Postgres', own: section('### 2b.'), other: section('### 2a.'), attach: 'fly mpg attach', host: /@pgbouncer\./ }
]

const productionRequires = [...new Set([...envSchema.then.required, ...migrationEnvSchema.then.required])]

for (const path of databasePaths) {
  t.test(`following the guide with ${path.name} gives a configuration the service accepts`, async (t) => {
    const text = sections.filter((candidate) => candidate !== path.other).map((candidate) => candidate.text).join('')
    const commands = flyCommands(text)
    t.ok(commands.some((command) => command.startsWith(path.attach)), `the guide runs \`${path.attach}\``)
    // Attach sets DATABASE_URL (flyctl's default --variable-name); the guide shows the URL it writes.
    const attached = [...path.own.text.matchAll(/`(?:DATABASE_URL=)?(postgres(?:ql)?:\/\/[^`]+)`/g)].map((match) => match[1]!).find((url) => path.host.test(url))
    t.ok(attached, `the guide shows the URL \`${path.attach}\` sets`)
    const fromAttach = { DATABASE_URL: filledIn(attached ?? '') }
    const secrets = secretsSet(commands, fromAttach)
    const env: Record<string, string> = { ...flyToml.env, FLY_APP_NAME: flyToml.app, ...fromAttach, ...secrets }

    for (const name of productionRequires) {
      const from = name in secrets ? 'fly secrets set' : name === 'DATABASE_URL' ? path.attach : name in flyToml.env ? 'fly.toml [env]' : undefined
      t.ok(from, `${name}, which production requires, is set by ${from ?? 'no step of the guide'}`)
    }
    for (const name of Object.keys(secrets)) t.ok(known.has(name), `the guide sets ${name}, a variable the service reads`)

    const config = loadConfig({ env })
    t.ok(config.isProduction, 'fly.toml makes it production')
    t.equal(config.flyAppName, flyToml.app)
    const migration = loadMigrationConfig({ env })
    t.equal(migration.databaseUrl, env.DATABASE_URL, 'the release command finds the database')
    if (path.name === 'Managed Postgres') t.match(migration.directDatabaseUrl, /@direct\./, 'and, past PgBouncer, the direct URL')

    // Each required variable the guide supplies is one the service would refuse to start without.
    for (const name of productionRequires.filter((required) => !(required in flyToml.env))) {
      const { [name]: _removed, ...without } = env
      t.throws(() => loadConfig({ env: without }), ConfigError, `without the step that sets ${name} the service refuses to start`)
    }
  })
}

t.test('fly.toml holds no secret, and only variables the service reads', async (t) => {
  for (const name of Object.keys(flyToml.env)) {
    t.ok(known.has(name), `[env] ${name} is a variable the service reads`)
    t.notOk(/SECRET|PASSWORD|^(DATABASE|DATABASE_DIRECT|SMTP|REDIS)_URL$/.test(name), `[env] ${name} is not a secret (fly.toml is committed)`)
  }
  t.equal(flyToml.env.NODE_ENV, 'production')
})

t.test('every CHANGE ME of fly.toml is a step of the guide', async (t) => {
  const lines = flyTomlText.split('\n')
  const changed = lines.flatMap((line, index) => {
    if (!line.trim().startsWith('# CHANGE ME')) return []
    const setting = lines.slice(index + 1).find((next) => next.trim() !== '' && !next.trim().startsWith('#'))
    return [/^\s*([A-Za-z_]+)\s*=/.exec(setting ?? '')![1]!]
  })
  t.ok(changed.length >= 4, `fly.toml marks what to change (${changed.join(', ')})`)
  for (const name of changed) t.match(guide, new RegExp(`\`${name} = "`), `the guide says what to set ${name} to`)
  t.match(guide, /`primary_region`/, 'and primary_region')
})

t.test('the guide\'s machine commands run files the image has, from any directory', async (t) => {
  const workdir = /^WORKDIR (\S+)/m.exec(readFileSync(join(projectRoot, 'Dockerfile'), 'utf8').split('FROM ').at(-1)!)?.[1]
  const ssh = flyCommands(guide).filter((command) => command.startsWith('fly ssh console -C '))
  t.ok(ssh.length >= 2, 'the doctor and user:admin run through fly ssh console')
  for (const command of ssh) {
    const script = /"node ([^\s"]+)/.exec(command)?.[1]
    t.ok(script?.startsWith(`${workdir}/dist/scripts/`), `${command}: an absolute path in the image's WORKDIR ${workdir}`)
    const source = script?.slice(`${workdir}/dist/`.length).replace(/\.js$/, '.ts')
    t.ok(source !== undefined && readFileSync(join(projectRoot, source), 'utf8').length > 0, `built from ${source}`)
  }
})
