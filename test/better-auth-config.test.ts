import t from 'tap'
import { getMigrations } from 'better-auth/db/migration'
import type { Pool } from 'pg'
import { buildTestApp, TEST_SECRET, TRUSTED_ORIGIN } from './helpers/app.js'
import { createTestDatabase } from './helpers/database.js'

t.test('better-auth.config.ts exports the server\'s instance, for Better Auth\'s CLI', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  Object.assign(process.env, { DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: TEST_SECRET, TRUSTED_ORIGINS: TRUSTED_ORIGIN })
  const { auth, default: defaultExport } = await import('../better-auth.config.js')
  t.teardown(() => (auth.options.database as Pool).end())
  t.equal(defaultExport, auth)

  const { app } = await buildTestApp(t, { migrate: false })
  t.same(auth.options.trustedOrigins, app.auth.options.trustedOrigins)
  t.same(auth.options.emailAndPassword, app.auth.options.emailAndPassword)
  t.same(auth.options.advanced, app.auth.options.advanced)

  // The CLI would create exactly what `pnpm migrate` creates (plugins included: they add tables and columns).
  const fromConfig = await getMigrations(auth.options)
  const fromServer = await getMigrations(app.auth.options)
  t.same(fromConfig.toBeCreated.map((table) => table.table), fromServer.toBeCreated.map((table) => table.table))
  t.same(await fromConfig.compileMigrations(), await fromServer.compileMigrations())
})
