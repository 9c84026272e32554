// The floors: what an HTTP answer (/ping) and a session check's database work (/session) cost at least, on the same
// Fastify, with no logging. Listens on PORT; DATABASE_URL for /session.
import Fastify from 'fastify'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const app = Fastify({ logger: false })

// Better Auth's session cookie: "<token>.<signature>", URL-encoded. Only the token is looked up here; the signature
// is not checked (that is part of what a real session check costs on top of this floor).
const COOKIE = /(?:^|;\s*)(?:__Secure-)?better-auth\.session_token=([^;]*)/

// One prepared statement (pg `name`): parsed and planned once per connection.
const SESSION_BY_TOKEN = `
  SELECT s.id, s."expiresAt", s."userId", u.id AS "user.id", u.name, u.email, u."emailVerified"
  FROM session s JOIN "user" u ON u.id = s."userId"
  WHERE s.token = $1`

app.get('/ping', async () => ({ pong: true }))

app.get('/session', async (request, reply) => {
  const value = COOKIE.exec(request.headers.cookie ?? '')?.[1]
  if (value === undefined) return reply.code(401).send({ code: 'UNAUTHORIZED' })
  const decoded = decodeURIComponent(value)
  const token = decoded.slice(0, decoded.lastIndexOf('.'))
  const { rows } = await pool.query({ name: 'session-by-token', text: SESSION_BY_TOKEN, values: [token] })
  if (rows.length === 0) return reply.code(401).send({ code: 'UNAUTHORIZED' })
  return rows[0]
})

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
// The harness holds our stdin: when it is gone, so are we.
process.stdin.on('close', () => process.exit(0)).resume()
process.on('SIGTERM', () => { app.close().then(() => pool.end()).finally(() => process.exit(0)) })
