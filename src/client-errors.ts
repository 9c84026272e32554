import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

// Requests Node's HTTP parser gives up on before Fastify sees them: too slow, headers too large, or not HTTP.
// They get the same JSON error shape as every other answer.
const ANSWERS: Record<string, { status: number, code: string, message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request did not arrive in time.' },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'HEADERS_TOO_LARGE', message: 'The request headers are too large.' }
}
const MALFORMED = { status: 400, code: 'MALFORMED_REQUEST', message: 'The request is not valid HTTP.' }

export function clientErrorHandler (this: FastifyInstance, error: Error & { code?: string }, socket: Socket) {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const answer = ANSWERS[error.code ?? ''] ?? MALFORMED
  // Only the code: Node attaches the raw request bytes (cookies included) to these errors.
  this.log.debug({ err: { code: error.code } }, `client error: ${answer.code}`)
  if (socket.writable) {
    const body = JSON.stringify({ code: answer.code, message: answer.message })
    socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nConnection: close\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }
  socket.destroy()
}
