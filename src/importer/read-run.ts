/**
 * Everything an import's plan needs from one model folder, read in one go: the run's files
 * (describeRunDir), their sizes, the parsed config and the run's metrics. A worker thread of
 * src/importer/prepare.ts runs it for the main thread; the result is plain data, so it can be posted.
 */
import { readFileSync, statSync } from 'node:fs'
import { describeRunDir, type RunDir } from './run.js'
import { parseConfig, readConfigBytes, runMetricsOf } from './factors.js'
import type { MetricsRead } from '../promote/metrics.js'

export interface RunRead {
  run: RunDir
  /** The size of each of run.files, in order. */
  sizes: number[]
  config: Record<string, unknown>
  /** The config file's bytes (the snapshot a promotion commits), when the run has one. */
  configBytes?: Uint8Array
  metrics?: MetricsRead
}

export async function readRun(dir: string, nested: string[]): Promise<RunRead> {
  const run = await describeRunDir(dir, new Set(nested))
  const sizes = run.files.map((f) => statSync(f.source).size)
  const configBytes = run.configFile ? new Uint8Array(readConfigBytes(run.configFile)) : undefined
  const config = run.configFile ? parseConfig(configBytes!, run.configFile) : {}
  const metrics = run.metricsFile ? runMetricsOf(readFileSync(run.metricsFile, 'utf8'), run.metricsFile) : undefined
  return { run, sizes, config, ...(configBytes ? { configBytes } : {}), ...(metrics ? { metrics } : {}) }
}
