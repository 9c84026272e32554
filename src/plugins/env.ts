import fastifyEnv from '@fastify/env'
import fp from 'fastify-plugin'
import { envOptions, resolveConfig, toConfigError, type Config, type LoadConfigOptions } from '../config/index.js'
import type { RawEnv } from '../config/schema.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated environment, as @fastify/env decorated it. */
    env: RawEnv
    /** The configuration derived from it: what every other plugin reads. */
    config: Config
  }
}

export type EnvPluginOptions = LoadConfigOptions

export default fp<EnvPluginOptions>(async function envPlugin (app, opts) {
  const options = envOptions(opts)
  try {
    await app.register(fastifyEnv, { ...options, confKey: 'env' })
  } catch (error) {
    throw toConfigError(error, options.data)
  }
  const config = resolveConfig(app.env)
  app.decorate('config', config)
  app.log.level = config.logLevel
  if (config.auth.secretSource === 'generated') {
    app.log.warn(`BETTER_AUTH_SECRET is not set: generated one for development in ${config.dataDir}/auth-secret`)
  } else if (config.auth.secretSource === 'file') {
    app.log.info(`BETTER_AUTH_SECRET is not set: using the development secret in ${config.dataDir}/auth-secret`)
  }
}, { name: 'env', fastify: '5.x' })
