import { createHmac, timingSafeEqual } from 'node:crypto'

// Better Auth's signed cookies, as better-call writes them: "<value>.<base64 HMAC-SHA256 of value>" (URL-encoded in
// the header). Checked here with Node's synchronous HMAC: Better Auth's WebCrypto check queues on libuv's thread
// pool, behind password hashing.

/** The signature better-call appends to a cookie value. */
export function cookieSignature (value: string, secret: string): string {
  return createHmac('sha256', secret).update(value).digest('base64')
}

/** The value of a signed cookie (already URL-decoded) when one of `secrets` signed it, else undefined. */
export function verifiedValue (signed: string | undefined, secrets: readonly string[]): string | undefined {
  if (signed === undefined) return undefined
  const dot = signed.lastIndexOf('.')
  if (dot < 1) return undefined
  const value = signed.slice(0, dot)
  const encoded = signed.slice(dot + 1)
  const signature = Buffer.from(encoded, 'base64')
  if (signature.length !== 32 || signature.toString('base64') !== encoded) return undefined
  for (const secret of secrets) {
    if (timingSafeEqual(createHmac('sha256', secret).update(value).digest(), signature)) return value
  }
  return undefined
}
