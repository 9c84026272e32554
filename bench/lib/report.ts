// Turns the measurements of one run into tables (printed, and written as Markdown) and the targets of issue 6.
import { readFileSync, writeFileSync } from 'node:fs'
import type { LoadResult } from './load.js'

export interface Row {
  id: string
  label: string
  connections: number
  /** Not part of a target; shown for comparison. */
  informational?: boolean
  /** One result per round. */
  rounds: LoadResult[]
}

export interface Summary {
  rps: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
  statuses: Record<string, number>
}

export function median (values: number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Medians over the rounds; status and error counts are summed. */
export function summarize (row: Row): Summary {
  const statuses: Record<string, number> = {}
  for (const round of row.rounds) {
    for (const [status, count] of Object.entries(round.statuses)) statuses[status] = (statuses[status] ?? 0) + count
  }
  return {
    rps: median(row.rounds.map((round) => round.rps)),
    p50Ms: median(row.rounds.map((round) => round.p50Ms)),
    p99Ms: median(row.rounds.map((round) => round.p99Ms)),
    non2xx: row.rounds.reduce((sum, round) => sum + round.non2xx, 0),
    errors: row.rounds.reduce((sum, round) => sum + round.errors, 0),
    statuses
  }
}

/**
 * `a` over `b`, round by round, then the median: both ran within the same round, so a slow spell of a busy machine
 * weighs on both sides of a ratio rather than on one.
 */
export function pairedRatio (a: Row, b: Row, pick: (result: LoadResult) => number = (result) => result.rps): number {
  const rounds = Math.min(a.rounds.length, b.rounds.length)
  return median(Array.from({ length: rounds }, (_, i) => pick(a.rounds[i]!) / pick(b.rounds[i]!)))
}

export interface Target {
  what: string
  measured: string
  target: string
  met: boolean
}

export interface Machine {
  cpu: string
  cores: number
  memoryGb: number
  os: string
  node: string
  harnessNode: string
  postgres: string
  database: string
  /** What memory the servers saw: fly.toml's VM (a cgroup each), or this machine's. */
  serverMemory?: string
  loadAverage: number
}

export interface Report {
  date: string
  settings: { durationS: number, rounds: number, connections: number, signInConnections: number, burstConnections: number, coldStarts: number, quick: boolean }
  machine: Machine
  rows: Array<Row & { summary: Summary }>
  storms: Array<{ check: string, alone: string, storm: string, p50Ratio: number, p99Ratio: number, informational?: boolean }>
  burst: { connections: number, statuses: Record<string, number>, errors: number, p50Ms: number, p99Ms: number, peakRssMb?: number, sampledPeakRssMb?: number }
  memory: { idleRssMb?: number, stormPeakRssMb?: number, stormPeakSource: string, sampledStormPeakRssMb?: number, stormStartRssMb?: number }
  coldStart: { medianMs: number, samplesMs: number[] }
  targets: Target[]
  warnings: string[]
  totalSeconds: number
}

const fixed = (value: number | undefined, digits: number) =>
  value === undefined || Number.isNaN(value) ? '–' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** req/s with a precision that suits its size. */
export const formatRps = (value: number) => fixed(value, value >= 100 ? 0 : 1)
export const formatMs = (value: number) => fixed(value, value >= 10 ? 0 : value >= 1 ? 1 : 2)
export const formatRatio = (value: number) => Number.isNaN(value) ? '–' : value >= 0.1 ? `${fixed(value, 2)}x` : `${fixed(value * 100, 1)}%`

/** A Markdown table with padded columns, readable as is in a terminal. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

const statusList = (statuses: Record<string, number>) =>
  Object.entries(statuses).sort(([a], [b]) => Number(a) - Number(b)).map(([status, count]) => `${status}: ${count}`).join(', ') || 'none'

export function renderTables (report: Report): string {
  const httpFloor = report.rows.find((row) => row.id === 'http-floor')!
  const dbFloor = report.rows.find((row) => row.id === 'db-floor')!
  const main = table(
    ['Scenario', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'vs HTTP floor', 'vs DB floor'],
    report.rows.map((row) => [
      row.label + (row.informational ? ' (info)' : ''), String(row.connections), formatRps(row.summary.rps), formatMs(row.summary.p50Ms),
      formatMs(row.summary.p99Ms), String(row.summary.non2xx), String(row.summary.errors),
      formatRatio(pairedRatio(row, httpFloor)), formatRatio(pairedRatio(row, dbFloor))
    ]))
  const storms = table(
    ['Session check (1 conn)', 'alone p50 / p99 ms', 'during sign-in storm p50 / p99 ms', 'p50 ratio', 'p99 ratio'],
    report.storms.map((storm) => [storm.check + (storm.informational ? ' (info)' : ''), storm.alone, storm.storm, formatRatio(storm.p50Ratio), formatRatio(storm.p99Ratio)]))
  const { burst, memory, coldStart } = report
  const other = table(['Measure', 'Value'], [
    [`Sign-in burst, ${burst.connections} at once: statuses`, statusList(burst.statuses) + (burst.errors > 0 ? `, no answer: ${burst.errors}` : '')],
    ['Sign-in burst: p50 / p99 ms; peak RSS (VmHWM)', `${formatMs(burst.p50Ms)} / ${formatMs(burst.p99Ms)}; ${fixed(burst.peakRssMb, 0)} MB`],
    ['Idle RSS (a few seconds after ready, before load)', `${fixed(memory.idleRssMb, 0)} MB`],
    [`Peak RSS during sign-in storms (${memory.stormPeakSource})`, `${fixed(memory.stormPeakRssMb, 0)} MB`],
    ['Peak RSS during sign-in storms (VmRSS sampled every 100 ms)', `${fixed(memory.sampledStormPeakRssMb, 0)} MB`],
    ['RSS when a sign-in storm began (the largest of them)', `${fixed(memory.stormStartRssMb, 0)} MB`],
    [`Cold start, spawn → first 200 from /health/ready (median of ${coldStart.samplesMs.length})`, `${fixed(coldStart.medianMs, 0)} ms (${coldStart.samplesMs.map((ms) => fixed(ms, 0)).join(', ')})`]
  ])
  const targets = table(['Target', 'Measured', 'Target', 'Met'],
    report.targets.map((target) => [target.what, target.measured, target.target, target.met ? 'met' : 'NOT met']))
  return [
    '### Throughput and latency', '', main, '',
    '### Session checks during a sign-in storm', '', storms, '',
    '### Memory, burst and cold start', '', other, '',
    '### Targets (issue 6)', '', targets
  ].join('\n')
}

export function renderMachine (report: Report): string {
  const { machine, settings } = report
  return [
    `Run of ${report.date} (${fixed(report.totalSeconds, 0)} s${settings.quick ? ', QUICK mode: not a valid measurement' : ''}):`,
    `${machine.cpu}, ${machine.cores} cores, ${fixed(machine.memoryGb, 1)} GB; ${machine.os}; servers on Node ${machine.node}` +
      (machine.harnessNode === machine.node ? '' : ` (harness on Node ${machine.harnessNode})`) +
      `; PostgreSQL ${machine.postgres} (${machine.database}); 1-min load average at start ${fixed(machine.loadAverage, 2)}.` +
      (machine.serverMemory === undefined ? '' : ` Servers' memory: ${machine.serverMemory}.`),
    `Each scenario ran ${settings.durationS} s per round, ${settings.rounds} interleaved round(s); medians over the rounds, ` +
      'ratios are medians of the per-round ratios; ' +
      `${settings.connections} keep-alive connections for throughput, ${settings.signInConnections} for sign-in, ${settings.burstConnections} for the burst.`
  ].join('\n')
}

export function renderWarnings (report: Report): string {
  return report.warnings.length === 0 ? '' : ['**Warnings**', '', ...report.warnings.map((warning) => `- ${warning}`)].join('\n')
}

/** The whole report as Markdown: the machine, the tables, the warnings. */
export function renderReport (report: Report): string {
  return [renderMachine(report), '', renderTables(report), '', renderWarnings(report)].join('\n').trim() + '\n'
}

export const DOCS_START = '<!-- bench:results:start (written by pnpm bench; edit the text outside these markers) -->'
export const DOCS_END = '<!-- bench:results:end -->'

/** Replaces the generated block of `file` with this run's machine, tables and warnings. */
export function updateDocs (file: string, report: Report): boolean {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return false
  }
  const start = text.indexOf(DOCS_START)
  const end = text.indexOf(DOCS_END)
  if (start === -1 || end < start) return false
  const block = [DOCS_START, '', renderReport(report), DOCS_END].join('\n')
  writeFileSync(file, text.slice(0, start) + block + text.slice(end + DOCS_END.length))
  return true
}
