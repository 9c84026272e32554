import type { FastifyRequest } from 'fastify'

/**
 * The header through which Better Auth learns the client's address. The auth route always overwrites it, so a
 * value sent by the client never reaches Better Auth (whose default, X-Forwarded-For, any client can forge).
 */
export const CLIENT_IP_HEADER = 'x-pond-client-ip'

/**
 * The client's address: on Fly, the `Fly-Client-IP` header that Fly's proxy sets (the socket address is the
 * proxy's); elsewhere the socket address.
 */
export function clientIp (request: FastifyRequest, { onFly }: { onFly: boolean }): string {
  const flyClientIp = request.headers['fly-client-ip']
  if (onFly && typeof flyClientIp === 'string' && flyClientIp !== '') return flyClientIp
  return request.socket.remoteAddress ?? request.ip
}
