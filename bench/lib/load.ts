// The load generator: autocannon in the harness process (the servers run in their own processes). Latencies are
// recorded here in microseconds (autocannon's own histogram keeps whole milliseconds), and every status is counted.
import autocannon from 'autocannon'
import { createHistogram } from 'node:perf_hooks'

export interface LoadOptions {
  /** Base URL of the server, like http://127.0.0.1:3000. */
  url: string
  path: string
  method?: 'GET' | 'POST'
  /** Keep-alive connections, each with one request in flight. */
  connections: number
  /** Seconds to run; in-flight requests at the end are not counted. */
  durationS?: number
  /** Or: this many requests, then wait for every answer (for slow requests, where a cut-off would lose a large share). */
  amount?: number
  /** Headers of each request, called once per request (cookies and client addresses rotate). */
  headers?: () => Record<string, string>
  /** Body of each request, called once per request. */
  body?: () => string
  /** Seconds before a request counts as timed out. */
  timeoutS?: number
}

export interface LoadResult {
  /** Responses per second, any status. */
  rps: number
  responses: number
  p50Ms: number
  p99Ms: number
  /** Responses by status code, like { '200': 9000, '429': 3 }. */
  statuses: Record<string, number>
  non2xx: number
  /** Connection errors and timeouts (requests that got no response). */
  errors: number
  seconds: number
}

export function runLoad (options: LoadOptions): Promise<LoadResult> {
  const latencies = createHistogram()
  const statuses: Record<string, number> = {}
  let responses = 0
  let non2xx = 0
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const deadline = options.amount === undefined ? started + BigInt(Math.round(options.durationS! * 1e9)) : undefined
    let lastAnswer = started
    const instance = autocannon({
      url: options.url,
      connections: options.connections,
      ...(options.amount === undefined ? { duration: options.durationS } : { amount: options.amount }),
      timeout: options.timeoutS ?? 10,
      requests: [{
        method: options.method ?? 'GET',
        path: options.path,
        // Rebuilding each request costs the load generator time: only when something in it changes.
        ...(options.headers === undefined && options.body === undefined
          ? {}
          : {
              setupRequest: (request) => ({
                ...request,
                headers: { ...request.headers, ...options.headers?.() },
                ...(options.body === undefined ? {} : { body: options.body() })
              })
            })
      }]
    }, (error, result) => {
      if (error) return reject(error)
      // autocannon reports on whole-second ticks: the time is ours, up to the last answer (amount) or the set
      // duration, answers after which are not counted.
      const seconds = options.amount === undefined ? options.durationS! : Number(lastAnswer - started) / 1e9
      resolve({
        rps: responses / seconds,
        responses,
        p50Ms: responses === 0 ? NaN : latencies.percentile(50) / 1000,
        p99Ms: responses === 0 ? NaN : latencies.percentile(99) / 1000,
        statuses,
        non2xx,
        errors: result.errors + result.timeouts,
        seconds
      })
    })
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      lastAnswer = process.hrtime.bigint()
      if (deadline !== undefined && lastAnswer > deadline) return
      responses++
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
      if (statusCode < 200 || statusCode > 299) non2xx++
      latencies.record(Math.max(1, Math.round(responseTimeMs * 1000)))
    })
  })
}

/** A random address in 10.0.0.0/8: each request looks like its own client behind Fly's proxy (Fly-Client-IP). */
export function randomClientIp (): string {
  const n = Math.floor(Math.random() * 0xffffff)
  return `10.${n >>> 16}.${(n >>> 8) & 0xff}.${n & 0xff}`
}

/** Headers that give a request its own client address, for our service (Fly-Client-IP with TRUST_PROXY=fly) and
 * for Better Auth mounted directly (it reads our CLIENT_IP_HEADER; the service overwrites that header itself). */
export function clientHeaders (): Record<string, string> {
  const ip = randomClientIp()
  return { 'fly-client-ip': ip, 'x-pond-client-ip': ip }
}
