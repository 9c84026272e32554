// Reading what the metrics port serves (Prometheus's text format), for tests that check how the numbers moved.
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'

export interface Sample { name: string, labels: Record<string, string>, value: number }

/** The samples of Prometheus's text format (no escaped quotes in our label values). */
export function parseExposition (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, v]) => s.labels[key] === v))
    .reduce((sum, s) => sum + s.value, 0)
}

/** How much the samples named `name` whose labels include `labels` moved from one scrape to the next. */
export function moved (before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}): number {
  return value(after, name, labels) - value(before, name, labels)
}

/** The app's metrics, scraped from its metrics port (METRICS_PORT) once that port listens. */
export async function metricsScraper (app: FastifyInstance) {
  const server = app.metrics!.server
  if (!server.listening) await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return async (): Promise<Sample[]> => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
}
