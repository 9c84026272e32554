// Memory of a server process, from Linux's /proc/<pid>/status: VmRSS (now) and VmHWM (the peak, "high water mark").
import { readFileSync, writeFileSync } from 'node:fs'

function statusField (pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined // not Linux, or the process is gone
  }
}

/** Resident memory in MB now. */
export const rssMb = (pid: number) => statusField(pid, 'VmRSS')
/** Peak resident memory in MB since the process started, or since the last resetPeak. */
export const peakMb = (pid: number) => statusField(pid, 'VmHWM')

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, own processes), so the next peak covers one phase only. */
export function resetPeak (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** Samples VmRSS every `intervalMs` until stopped; `stop` returns the highest sample in MB. */
export function sampleRss (pid: number, intervalMs = 100): { stop: () => number | undefined } {
  let max: number | undefined
  const take = () => {
    const value = rssMb(pid)
    if (value !== undefined && (max === undefined || value > max)) max = value
  }
  take()
  const timer = setInterval(take, intervalMs)
  return { stop: () => { clearInterval(timer); take(); return max } }
}
