// Text PostgreSQL and Better Auth cannot take: a NUL character (PostgreSQL refuses it in text, SQLSTATE 22021) or
// a lone UTF-16 surrogate (encodeURIComponent throws). Such a request is refused with 400 before Better Auth runs,
// so it cannot half-apply (write a row, then fail).

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** True when some string in `value` (walked through arrays and objects) is not acceptable text. */
function hasBadText (value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000') || LONE_SURROGATE.test(value)
  if (depth > 64 || value === null || typeof value !== 'object') return false
  for (const [key, item] of Object.entries(value)) {
    if (hasBadText(key, depth + 1) || hasBadText(item, depth + 1)) return true
  }
  return false
}

/**
 * Whether the request's query or body carries text that must not reach Better Auth. A body that does not parse is
 * left to Better Auth, which refuses it with its own 400.
 */
export function carriesBadText (url: URL, contentType: string | undefined, body: Buffer | undefined): boolean {
  if ([...url.searchParams].some(([key, value]) => hasBadText(key) || hasBadText(value))) return true
  if (body === undefined || body.length === 0) return false
  const text = body.toString('utf8')
  if (text.includes('\u0000')) return true
  if (contentType?.includes('json')) {
    try {
      return hasBadText(JSON.parse(text))
    } catch {
      return false
    }
  }
  if (contentType?.includes('x-www-form-urlencoded')) {
    return [...new URLSearchParams(text)].some(([key, value]) => hasBadText(key) || hasBadText(value))
  }
  return false
}
