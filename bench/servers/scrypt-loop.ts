// Bare scrypt with Better Auth's parameters (@better-auth/utils password.node): `AMOUNT` hashes, `PARALLEL` in
// flight, as the sign-in scenario runs its requests: what sign-in could reach if hashing were all it did.
// Prints one JSON line: { hashes, seconds, p50Ms, p99Ms }.
import { randomBytes, scrypt } from 'node:crypto'
import { createHistogram } from 'node:perf_hooks'

const N = 16384
const r = 16
const p = 1
const dkLen = 64
const parallel = Number(process.env.PARALLEL ?? 10)
const amount = Number(process.env.AMOUNT ?? 40)

const latencies = createHistogram()

function hashOnce (): Promise<void> {
  const begun = performance.now()
  return new Promise((resolve, reject) => {
    scrypt('correct horse battery staple'.normalize('NFKC'), randomBytes(16).toString('hex'), dkLen, { N, r, p, maxmem: 128 * N * r * 2 }, (error) => {
      if (error) return reject(error)
      latencies.record(Math.max(1, Math.round((performance.now() - begun) * 1000)))
      resolve()
    })
  })
}

// Like autocannon's connections with `amount`: each worker does its share, one hash after the other.
const begun = performance.now()
await Promise.all(Array.from({ length: parallel }, async (_, i) => {
  const share = Math.floor(amount / parallel) + (i < amount % parallel ? 1 : 0)
  for (let done = 0; done < share; done++) await hashOnce()
}))
const seconds = (performance.now() - begun) / 1000
process.stdout.write(JSON.stringify({ hashes: amount, seconds, p50Ms: latencies.percentile(50) / 1000, p99Ms: latencies.percentile(99) / 1000 }) + '\n')
