import type { BetterAuthPlugin } from 'better-auth'
import { APIError, createAuthMiddleware } from 'better-auth/api'

export const NAME_MAX_LENGTH = 100
export const IMAGE_MAX_LENGTH = 2048
export const BAN_REASON_MAX_LENGTH = 500

/**
 * Control characters (CR and LF above all: a name is written into mail), line and paragraph separators, and the
 * bidirectional controls that make text read differently from what it is ("gpj.exe" shown as "exe.jpg").
 */
const NOT_IN_A_NAME = /[\p{Cc}\p{Bidi_Control}\u2028\u2029]/u

export const isValidName = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= NAME_MAX_LENGTH && value.trim() !== '' && !NOT_IN_A_NAME.test(value)

function isValidImage (value: unknown): boolean {
  if (value === null) return true
  if (typeof value !== 'string' || value.length > IMAGE_MAX_LENGTH || !URL.canParse(value)) return false
  const { protocol } = new URL(value)
  return protocol === 'https:' || protocol === 'http:'
}

/** Only admins write and read it, so it may have lines; null clears it. */
const isValidBanReason = (value: unknown) => value === null || (typeof value === 'string' && value.length <= BAN_REASON_MAX_LENGTH)

interface Rule { valid: (value: unknown) => boolean, code: string, message: string }

const RULES = {
  name: {
    valid: isValidName,
    code: 'INVALID_NAME',
    message: `A name is text of 1 to ${NAME_MAX_LENGTH} characters, without line breaks, control or bidirectional characters.`
  },
  image: { valid: isValidImage, code: 'INVALID_IMAGE', message: `An image is an http(s) URL of at most ${IMAGE_MAX_LENGTH} characters, or null.` },
  banReason: { valid: isValidBanReason, code: 'INVALID_BAN_REASON', message: `A ban reason is text of at most ${BAN_REASON_MAX_LENGTH} characters.` }
} satisfies Record<string, Rule>

const invalidData = (message: string): Rule => ({ valid: () => false, code: 'INVALID_USER_DATA', message })
const isDate = (value: unknown) => (typeof value === 'string' && value.length <= 64 && !Number.isNaN(Date.parse(value))) || value instanceof Date
const isRole = (value: unknown) => typeof value === 'string' && value.length <= NAME_MAX_LENGTH

/**
 * The user fields an admin's `data` may set, each with its rule. Anything else (id, createdAt, a column a plugin
 * adds later) is refused rather than handed to the database.
 */
const ADMIN_DATA_RULES: Record<string, Rule> = {
  ...RULES,
  email: { valid: (value) => typeof value === 'string' && value.length <= 254, code: 'INVALID_USER_DATA', message: 'email is an address.' },
  emailVerified: { valid: (value) => typeof value === 'boolean', code: 'INVALID_USER_DATA', message: 'emailVerified is true or false.' },
  banned: { valid: (value) => typeof value === 'boolean', code: 'INVALID_USER_DATA', message: 'banned is true or false.' },
  banExpires: { valid: (value) => value === null || isDate(value), code: 'INVALID_USER_DATA', message: 'banExpires is a date or null.' },
  // Better Auth checks the roles themselves; this bounds their size.
  role: {
    valid: (value) => isRole(value) || (Array.isArray(value) && value.length <= 20 && value.every(isRole)),
    code: 'INVALID_USER_DATA',
    message: 'role is a role name or a list of them.'
  }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

type Body = Record<string, unknown>
type Field = [rule: Rule, value: unknown]

/** An admin's `data`: absent, or an object of known fields. */
function adminData (data: unknown): Field[] {
  if (data === undefined) return []
  if (!isPlainObject(data)) return [[invalidData('data is an object of user fields.'), data]]
  return Object.entries(data).map(([key, value]) => [(Object.hasOwn(ADMIN_DATA_RULES, key) ? ADMIN_DATA_RULES[key] : undefined) ?? invalidData(`data.${key.slice(0, 50)} cannot be set.`), value])
}

/** Every endpoint (Better Auth 1.7 and its admin plugin) whose body writes user fields, and the fields it writes. */
const USER_FIELD_WRITES: Record<string, (body: Body) => Field[]> = {
  '/sign-up/email': (body) => [[RULES.name, body.name], [RULES.image, body.image]],
  '/update-user': (body) => [[RULES.name, body.name], [RULES.image, body.image]],
  '/admin/create-user': (body) => [[RULES.name, body.name], ...adminData(body.data)],
  '/admin/update-user': (body) => adminData(body.data),
  '/admin/ban-user': (body) => [[RULES.banReason, body.banReason]]
}

/**
 * Checks the user fields of a request before Better Auth sees it. Better Auth's own schemas accept anything for
 * update-user's fields and an admin's `data` (an array was stored as '{"a","b"}', a number as text, a deeply nested
 * array answered 500 from inside pg) and put no bound on a name, which is written into mail. A bad field answers 400
 * with a code naming it. A body that is not an object is left to Better Auth, which refuses it.
 */
export function userFieldRules () {
  return {
    id: 'user-field-rules',
    hooks: {
      before: [{
        matcher: (ctx) => ctx.path !== undefined && ctx.path in USER_FIELD_WRITES,
        handler: createAuthMiddleware(async (ctx) => {
          const body: unknown = ctx.body
          if (!isPlainObject(body)) return
          for (const [rule, value] of USER_FIELD_WRITES[ctx.path]!(body)) {
            if (value !== undefined && !rule.valid(value)) throw new APIError('BAD_REQUEST', { code: rule.code, message: rule.message })
          }
        })
      }]
    }
  } satisfies BetterAuthPlugin
}
