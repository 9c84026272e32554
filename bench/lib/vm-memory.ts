// Fly runs pond-backend on a VM with fly.toml's [[vm]] memory, and Node sizes V8's heap from the memory it has: the
// machine's, or a cgroup's limit when that is lower. On a large bench machine V8 would size its heap for that machine
// instead (a 4 GB heap limit on 24 GB, 268 MB on 512 MB), and the memory figures would describe a server Fly never
// runs. So, where the harness may create memory cgroups, each server process runs in a cgroup of its own, limited to
// the VM's memory: what the process sees is what it would see on the VM. That takes root and cgroup v1's memory
// controller, or v2 from a cgroup whose children may get the memory controller (v2 refuses it below a cgroup that
// holds processes, such as a systemd session's): elsewhere the servers run unconstrained.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseToml } from 'smol-toml'

export interface VmMemory {
  /** The VM's memory, from fly.toml. */
  bytes: number
  /** The command and arguments that start `command args…` inside a new cgroup of `bytes`. */
  wrap: (command: string, args: string[]) => { command: string, args: string[] }
  /** Removes the cgroups (once their processes have exited). */
  cleanup: () => void
}

/** The VM's memory as per-process cgroups, or why they cannot be used here (then servers run unconstrained). */
export function vmMemory (flyToml: string): VmMemory | { reason: string } {
  const vm = (parseToml(readFileSync(flyToml, 'utf8')) as { vm?: Array<{ memory?: string | number }> }).vm?.[0]
  const bytes = memoryBytes(vm?.memory)
  if (bytes === undefined) return { reason: `no [[vm]] memory in ${flyToml}` }

  const parent = ownMemoryCgroup()
  if (parent === undefined) return { reason: 'no memory cgroup controller visible to this process' }
  const limitFile = existsSync(join(parent, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max'
  const created: string[] = []
  const createCgroup = () => {
    const dir = join(parent, `pond-bench-${process.pid}-${created.length + 1}`)
    mkdirSync(dir)
    created.push(dir)
    writeFileSync(join(dir, limitFile), String(bytes))
    return dir
  }
  const removeCreated = () => {
    for (const dir of created.splice(0)) {
      try {
        rmdirSync(dir)
      } catch {
        // Still has a process, or already gone: nothing to do that would not risk more.
      }
    }
  }
  try {
    // A trial, which also tells whether we may create them at all.
    rmdirSync(createCgroup())
    created.pop()
  } catch (error) {
    removeCreated()
    return { reason: `cannot create a memory cgroup under ${parent} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` }
  }
  return {
    bytes,
    wrap (command, args) {
      // The shell joins the cgroup, then becomes the command: same pid, and the limit holds before Node starts.
      const procs = join(createCgroup(), 'cgroup.procs')
      return { command: 'sh', args: ['-c', 'echo $$ > "$0" && exec "$@"', procs, command, ...args] }
    },
    cleanup: removeCreated
  }
}

function memoryBytes (memory: string | number | undefined): number | undefined {
  if (typeof memory === 'number') return memory * 2 ** 20
  const match = /^(\d+)\s*(mb|gb)$/i.exec(memory ?? '')
  if (match === null) return undefined
  return Number(match[1]) * 2 ** (match[2]!.toLowerCase() === 'gb' ? 30 : 20)
}

/** The directory of this process's memory cgroup: v1's memory hierarchy, else the v2 unified one. */
function ownMemoryCgroup (): string | undefined {
  let lines: string[]
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')
  } catch {
    return undefined
  }
  const v1 = lines.map((line) => line.split(':')).find(([, controllers]) => controllers?.split(',').includes('memory'))
  if (v1 !== undefined && existsSync('/sys/fs/cgroup/memory')) return join('/sys/fs/cgroup/memory', v1[2]!)
  const v2 = lines.find((line) => line.startsWith('0::'))
  const controllers = '/sys/fs/cgroup/cgroup.controllers'
  if (v2 !== undefined && existsSync(controllers) && readFileSync(controllers, 'utf8').includes('memory')) {
    return join('/sys/fs/cgroup', v2.slice(3))
  }
  return undefined
}
