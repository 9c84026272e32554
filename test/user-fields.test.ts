// Security review findings 10 and 13: the user fields a client (or an admin) writes. Every endpoint that writes
// name, image, ban reason or an admin's `data` checks types and lengths first and answers 400 with a stable code:
// `{name: ['a','b']}` was stored as '{"a","b"}', `{name: 42}` as "42", a deeply nested array answered 500, and a
// name could be 60,000 characters with line breaks and links (written into mail to other addresses).
import t, { type Test } from 'tap'
import { buildTestApp } from './helpers/app.js'
import { browserClient } from './helpers/browser-client.js'
import { query } from './helpers/database.js'

const PASSWORD = 'correct horse battery'
const { url, databaseUrl } = await buildTestApp(t, { listen: true })

type Client = ReturnType<typeof browserClient>
type Response = Awaited<ReturnType<Client['post']>>

/**
 * `[[[…]]]`, 30,000 levels: deeper than anything that recurses (pg's value preparation did) can follow. JSON.stringify
 * cannot write it either, so it stands as a marker in a body and is spliced into the JSON text when sent.
 */
const DEEP = Symbol.for('30,000-deep array')
const DEEP_JSON = '['.repeat(30_000) + ']'.repeat(30_000)
const bodyText = (body: unknown) =>
  JSON.stringify(body, (_key, value: unknown) => value === DEEP ? '\u0000DEEP' : value).replaceAll('"\\u0000DEEP"', DEEP_JSON)
/** What the finding's attacker used as a name: long, multi-line, with a link. */
const PHISHING_NAME = 'Your Pond account is locked.\r\nUnlock it at https://unlock.evil.example/now\r\n' + 'x'.repeat(60_000)

/** POST with a body that may hold DEEP. */
const post = (client: Client, path: string, body: unknown) => client.post(path, bodyText(body))

async function signUp (email: string, name = email.split('@')[0]!) {
  const browser = browserClient(url)
  const response = await browser.post('/api/auth/sign-up/email', { email, password: PASSWORD, name })
  if (response.status !== 200) throw new Error(`sign-up ${email}: ${response.status} ${response.text}`)
  return { browser, user: response.json().user as { id: string, email: string } }
}

const userRow = async (id: string) => (await query(databaseUrl, 'SELECT name, image, "banReason", banned FROM "user" WHERE id = $1', [id])).rows[0]
const userCount = async (email: string) => (await query(databaseUrl, 'SELECT count(*)::int AS n FROM "user" WHERE email = $1', [email])).rows[0].n as number

/** A 400 with our JSON shape and `code`. The body is shown only when it fails. */
function refused (t: Test, response: Response, code: string, message: string) {
  t.equal(response.status, 400, `${message}: 400`, { body: response.text.slice(0, 300) })
  const body = response.status < 500 ? JSON.parse(response.text || '{}') : {}
  t.equal(body.code, code, `${message}: ${code}`)
  t.type(body.message, 'string', `${message}: with a message`)
}

/** Our route refuses a NUL anywhere in a request before Better Auth (src/auth/request-text.ts). */
const codeFor = (what: string, code: string) => what === 'a NUL' ? 'INVALID_CHARACTER' : code

const BAD_NAMES: Array<[string, unknown]> = [
  ['an array', ['a', 'b']],
  ['a number', 42],
  ['null', null],
  ['an object', { first: 'A' }],
  ['a 30,000-deep array', DEEP],
  ['an empty string', ''],
  ['only spaces', '   '],
  ['101 characters', 'n'.repeat(101)],
  ['CR LF', 'Ada\r\nBcc: everyone'],
  ['a tab', 'Ada\tLovelace'],
  ['a NUL', 'Ada\u0000'],
  ['a line separator', 'Ada\u2028Lovelace'],
  ['a right-to-left override', 'Ada \u202Egpj.exe'],
  ['a bidi isolate', 'Ada \u2067evil\u2069'],
  ['the phishing name of the finding', PHISHING_NAME]
]

const BAD_IMAGES: Array<[string, unknown]> = [
  ['a number', 42],
  ['an array', ['https://img.example/a.png']],
  ['a 30,000-deep array', DEEP],
  ['not a URL', 'just words'],
  ['a javascript: URL', 'javascript:alert(1)'],
  ['a data: URL', 'data:image/png;base64,AAAA'],
  ['over 2048 characters', `https://img.example/${'a'.repeat(2048)}`]
]

t.test('update-user: name and image are checked before anything is stored', async (t) => {
  const { browser, user } = await signUp('updater@example.com', 'Ada')
  for (const [what, name] of BAD_NAMES) refused(t, await post(browser, '/api/auth/update-user', { name }), codeFor(what, 'INVALID_NAME'), `name ${what}`)
  for (const [what, image] of BAD_IMAGES) refused(t, await post(browser, '/api/auth/update-user', { image }), 'INVALID_IMAGE', `image ${what}`)
  t.same(await userRow(user.id), { name: 'Ada', image: null, banReason: null, banned: false }, 'nothing was stored')

  const good = await browser.post('/api/auth/update-user', { name: 'Ada Lovelace-Byron, née ☃', image: 'https://img.example/ada.png' })
  t.equal(good.status, 200, 'a good name and image are stored', { body: good.text })
  t.match(await userRow(user.id), { name: 'Ada Lovelace-Byron, née ☃', image: 'https://img.example/ada.png' })
  t.equal((await browser.post('/api/auth/update-user', { name: 'n'.repeat(100), image: null })).status, 200, '100 characters, and image null')
  t.match(await userRow(user.id), { name: 'n'.repeat(100), image: null })
})

t.test('sign-up: name and image are checked; nothing is created', async (t) => {
  const email = 'newcomer@example.com'
  for (const [what, name] of BAD_NAMES) {
    refused(t, await post(browserClient(url), '/api/auth/sign-up/email', { email, password: PASSWORD, name }), codeFor(what, 'INVALID_NAME'), `name ${what}`)
  }
  for (const [what, image] of BAD_IMAGES) {
    refused(t, await post(browserClient(url), '/api/auth/sign-up/email', { email, password: PASSWORD, name: 'New', image }), 'INVALID_IMAGE', `image ${what}`)
  }
  t.equal(await userCount(email), 0, 'no account was created')
  const good = await browserClient(url).post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'New', image: 'http://img.example/n.png' })
  t.equal(good.status, 200, 'a good sign-up works', { body: good.text })
})

// Better Auth parses the body (JSON.parse copes with any depth) and drops fields it does not know: only what it
// would store has to be checked, and nothing may answer 5xx.
t.test('deep nesting anywhere in a body never answers 5xx', async (t) => {
  const { browser } = await signUp('nester@example.com')
  const cases: Array<[string, string, unknown]> = [
    ['update-user, the whole body', '/api/auth/update-user', DEEP],
    ['update-user, another field', '/api/auth/update-user', { name: 'Fine', nested: DEEP }],
    ['sign-up, the whole body', '/api/auth/sign-up/email', DEEP],
    ['sign-up, another field', '/api/auth/sign-up/email', { email: 'deep@example.com', password: PASSWORD, name: 'Deep', nested: DEEP }]
  ]
  for (const [what, path, body] of cases) {
    const response = await post(browser, path, body)
    t.ok(response.status < 500, `${what}: ${response.status}`, { body: response.text.slice(0, 300) })
    t.type(JSON.parse(response.text), 'object', `${what}: a JSON answer`)
  }
})

t.test('admin create-user, update-user and ban-user check what they write', async (t) => {
  const root = await signUp('root@example.com')
  await query(databaseUrl, 'UPDATE "user" SET role = \'admin\' WHERE id = $1', [root.user.id])
  const eve = await signUp('eve@example.com', 'Eve')
  const admin = (path: string, body: unknown) => post(root.browser, `/api/auth/admin/${path}`, body)
  const create = (extra: Record<string, unknown>) => admin('create-user', { email: 'made@example.com', password: PASSWORD, name: 'Made', ...extra })

  for (const [what, name] of BAD_NAMES) refused(t, await create({ name }), codeFor(what, 'INVALID_NAME'), `create-user name ${what}`)
  refused(t, await create({ data: { name: 42 } }), 'INVALID_NAME', 'create-user data.name')
  refused(t, await create({ data: { image: 'javascript:alert(1)' } }), 'INVALID_IMAGE', 'create-user data.image')
  refused(t, await create({ data: { banReason: 'r'.repeat(501) } }), 'INVALID_BAN_REASON', 'create-user data.banReason too long')
  refused(t, await create({ data: { emailVerified: 'yes' } }), 'INVALID_USER_DATA', 'create-user data.emailVerified not a boolean')
  refused(t, await create({ data: { banned: DEEP } }), 'INVALID_USER_DATA', 'create-user data.banned deep')
  refused(t, await create({ data: { createdAt: '1970-01-01' } }), 'INVALID_USER_DATA', 'create-user data with a field it may not set')
  refused(t, await create({ data: DEEP }), 'INVALID_USER_DATA', 'create-user data a deep array')
  t.equal(await userCount('made@example.com'), 0, 'no user was created')
  const made = await create({ data: { image: 'https://img.example/m.png', emailVerified: true } })
  t.equal(made.status, 200, 'a good create-user works', { body: made.text })

  const update = (data: unknown) => admin('update-user', { userId: eve.user.id, data })
  for (const [what, name] of BAD_NAMES) refused(t, await update({ name }), codeFor(what, 'INVALID_NAME'), `update-user data.name ${what}`)
  for (const [what, image] of BAD_IMAGES) refused(t, await update({ image }), 'INVALID_IMAGE', `update-user data.image ${what}`)
  refused(t, await update({ banReason: 42 }), 'INVALID_BAN_REASON', 'update-user data.banReason a number')
  refused(t, await update({ banReason: ['spam'] }), 'INVALID_BAN_REASON', 'update-user data.banReason an array')
  refused(t, await update({ banned: 'true' }), 'INVALID_USER_DATA', 'update-user data.banned a string')
  refused(t, await update({ banExpires: 'next tuesday' }), 'INVALID_USER_DATA', 'update-user data.banExpires not a date')
  refused(t, await update({ email: ['eve@example.com'] }), 'INVALID_USER_DATA', 'update-user data.email an array')
  refused(t, await update(DEEP), 'INVALID_USER_DATA', 'update-user data a deep array')
  refused(t, await update({ nested: DEEP }), 'INVALID_USER_DATA', 'update-user data with an unknown deep field')
  t.same(await userRow(eve.user.id), { name: 'Eve', image: null, banReason: null, banned: false }, 'Eve is unchanged')
  const renamed = await update({ name: 'Eve Renamed', image: 'https://img.example/e.png' })
  t.equal(renamed.status, 200, 'a good update-user works', { body: renamed.text })

  refused(t, await admin('ban-user', { userId: eve.user.id, banReason: 'r'.repeat(501) }), 'INVALID_BAN_REASON', 'ban-user banReason too long')
  refused(t, await admin('ban-user', { userId: eve.user.id, banReason: DEEP }), 'INVALID_BAN_REASON', 'ban-user banReason deep')
  t.match(await userRow(eve.user.id), { name: 'Eve Renamed', banned: false }, 'not banned by a refused request')
  const ban = await admin('ban-user', { userId: eve.user.id, banReason: 'Spam, reported twice.\nSee ticket 12.' })
  t.equal(ban.status, 200, 'a good ban works (a reason may have lines: only admins read it)', { body: ban.text })
  t.match(await userRow(eve.user.id), { banned: true, banReason: 'Spam, reported twice.\nSee ticket 12.' })
})
