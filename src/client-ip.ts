import { isIP } from 'node:net'
import proxyAddr from '@fastify/proxy-addr'
import type { FastifyRequest } from 'fastify'
import type { TrustProxy } from './config/schema.js'

/**
 * The header through which Better Auth learns the client's address. The auth route always overwrites it, so a
 * value sent by the client never reaches Better Auth (whose default, X-Forwarded-For, any client can forge).
 */
export const CLIENT_IP_HEADER = 'x-pond-client-ip'

/**
 * One trust model for the client's address, used for Better Auth (sessions, rate limits) and the logs:
 * - `none`: the socket address; every forwarding header is ignored.
 * - `fly`: `Fly-Client-IP`, which Fly's proxy sets (the socket address is the proxy's), believed only from an IPv4
 *   peer: Fly's proxy reaches a machine over its private IPv4 address, while every other app of the organisation and
 *   every WireGuard peer comes over 6PN (IPv6) and could write any header.
 * - `header`: a header that the proxy in front of us sets and overwrites (e.g. X-Real-IP).
 * - `proxies`: X-Forwarded-For, read from the right and skipping only the listed proxies, so whatever a client put
 *   at the left of the chain is never taken.
 * A header that is missing or not an IP address falls back to the socket address.
 */
export function createClientIp (trust: TrustProxy): (request: FastifyRequest) => string {
  const socketAddress = (request: FastifyRequest) => request.socket?.remoteAddress ?? request.ip
  switch (trust.mode) {
    case 'none':
      return socketAddress
    case 'fly':
    case 'header': {
      const name = trust.mode === 'fly' ? 'fly-client-ip' : trust.header
      const fromProxy = trust.mode === 'fly' ? (peer: string) => isIPv4Peer(peer) : () => true
      return (request) => {
        const peer = socketAddress(request)
        const value = request.headers[name]
        return typeof value === 'string' && isIP(value.trim()) !== 0 && fromProxy(peer) ? value.trim() : peer
      }
    }
    case 'proxies': {
      const trusted = proxyAddr.compile(trust.proxies)
      return (request) => proxyAddr(request.raw, trusted)
    }
  }
}

/** An IPv4 peer, also as a dual-stack socket shows it (`::ffff:172.19.0.2`). */
function isIPv4Peer (address: string): boolean {
  return isIP(address) === 4 || (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4)
}

/**
 * The key a client's budgets count under: its address, or for IPv6 its /64 network, as Better Auth's limiter keys it
 * (one subscriber usually gets a whole /64, so rotating addresses within it must buy nothing). IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 */
export function clientBudgetKey (ip: string): string {
  if (isIP(ip) !== 6) return ip
  const address = ip.split('%')[0]!.toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)
  if (mapped) return mapped[1]!
  const [head = '', tail] = address.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
  return `${groups.slice(0, 4).map((group) => group.padStart(4, '0')).join(':')}::/64`
}
