import { Socket } from 'node:net'

/** Whether something accepts connections at `redisUrl` (1 s at most): tests that need Redis skip without it. */
export function redisReachable (redisUrl: string): Promise<boolean> {
  const { hostname, port } = new URL(redisUrl)
  return new Promise((resolve) => {
    const socket = new Socket()
    socket.setTimeout(1_000)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
    socket.connect(Number(port || 6379), hostname)
  })
}
