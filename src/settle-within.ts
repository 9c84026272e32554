/**
 * Waits until every promise has settled, or `timeoutMs` has passed: true when they all settled. For shutdown, where
 * each stage gets a bounded share of the time before the process must exit (src/server.ts).
 */
export async function settleWithin (promises: Iterable<Promise<unknown>>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
  try {
    return await Promise.race([Promise.allSettled([...promises]).then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}
