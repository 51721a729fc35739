/** The environment a promotion records: tool versions, platform and hardware, plus --env k=v. */
import { cpus, platform, arch, release, totalmem } from 'node:os'
import { version } from '../version.js'
import type { Host } from '../host.js'

export function detectEnvironment(host: Host): Record<string, string> {
  const cpu = cpus()
  return {
    git_zoo: version,
    node: host.node,
    os: `${platform()} ${release()}`,
    arch: arch(),
    cpu: cpu.length ? `${cpu.length} x ${cpu[0]!.model.trim()}` : 'unknown',
    memory_gib: (totalmem() / 2 ** 30).toFixed(1),
  }
}
