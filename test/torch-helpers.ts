/**
 * Helpers of the torch and export tests: Debian's python3 (which has torch 1.13 and numpy; the
 * pyenv python3 first on PATH has neither) to write and check real torch.save files, and promotions
 * of trajectories in process (the CLI's add does not tag epochs).
 */
import { spawnSync, execFile } from 'node:child_process'
import { processCtx } from './cli.js'
import type { PromotionSpec } from '../src/promote/promote.js'

export const PY = '/usr/bin/python3'

/** Why the torch tests are skipped (a message), or false when torch and numpy import. */
export const torchMissing: string | false = (() => {
  const r = spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' })
  return r.status === 0 ? false : `skipped: ${PY} cannot import torch and numpy (apt-get install python3-torch python3-numpy): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`
})()

/** Runs a Python script in `cwd`; resolves to its stdout, rejects with its stderr. */
export function py(cwd: string, script: string, args: string[] = []): Promise<string> {
  return new Promise((res, rej) => {
    execFile(PY, ['-c', script, ...args], { cwd, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) rej(new Error(`python failed: ${stderr || err.message}`)); else res(stdout)
    })
  })
}

/** Promotes models in one commit, in process, from the build (dist/ is built by pretest). */
export async function promoteInProcess(dir: string, specs: PromotionSpec[]): Promise<void> {
  const { promote } = await import('../dist/src/promote/promote.js' as string) as typeof import('../src/promote/promote.js')
  const { Repo } = await import('../dist/src/repo.js' as string) as typeof import('../src/repo.js')
  await promote(await Repo.open(dir, processCtx()), specs)
}
