import t from 'tap'
import { buildTestApp, freePort } from './helpers/app.js'

t.test('HOST=:: serves IPv4 and IPv6', async (t) => {
  const port = await freePort()
  const { app } = await buildTestApp(t, { env: { HOST: '::', PORT: String(port) } })
  await app.listen({ port: app.config.port, host: app.config.host })
  for (const address of ['127.0.0.1', '[::1]']) {
    const response = await fetch(`http://${address}:${port}/health`)
    t.equal(response.status, 200, address)
  }
})
