/**
 * The JSON documents the web app reads (spec/ui.md): served by `git zoo ui` under /api/ and written
 * as files by `git zoo ui --export`. Types only, shared by the server (src/ui/*.ts) and the browser
 * code (src/ui/web/*.ts).
 */
import type { Manifest } from '../manifest/manifest.js'
import type { LogEntry } from '../promote/log.js'
import type { MetadataDiff } from '../weights/metadata-diff.js'
import type { FileWeightDiff, StorageShare } from '../weights/diff.js'

/** What the app needs to know before anything else. */
export interface AppInfo {
  /** 'live': `git zoo ui` answers /api/...; 'static': an export, data under data/. */
  mode: 'live' | 'static'
  /** The zoo's folder name, for the title. */
  zoo: string
  version: string
  /** Static exports: the zoo's HTTP remote that downloads read objects from (null: none configured). */
  remote: string | null
}

/**
 * The catalog's columns (the same rows and cells `git zoo ls`/`find` read), one value per model
 * version, row order as in the catalog, in two parts: this JSON document (strings, dictionaries,
 * where each binary column lies) and a binary file of the numeric columns (`/api/catalog.bin`,
 * `data/catalog.bin`): little-endian float32 where every value of a column is exactly a float32
 * (as the catalog cache stores it), else float64, NaN for a missing value; u8 for the latest /
 * latest-in-service flags; u32 codes of dictionary columns (0 missing, k the k-th value). The
 * per-epoch history columns (`h:<metric>:<epoch>`) are listed in `history` and read per metric.
 */
export interface CatalogPayload {
  /** Names this build of the catalog: the binary part is asked for with it (`catalog.bin?id=`). */
  id: string
  count: number
  sections: Array<{ col: string; type: 'f32' | 'f64' | 'u8' | 'u32'; offset: number }>
  /** Plain string columns (null: missing). */
  str: Record<string, Array<string | null>>
  /**
   * String columns sent only when a query needs them (seal, created: long and unique per row),
   * each a JSON list like `str`'s: `/api/column?col=<col>&id=<id>`, `data/columns/<col>.json`.
   */
  lazy: string[]
  /** Values of dictionary columns (their codes are u32 sections named dict:<col>). */
  dicts: Record<string, string[]>
  /** Metric -> epochs indexed (history columns h:<metric>:<epoch>). */
  history: Record<string, number[]>
  /** Manifests that could not be indexed. */
  problems: Array<{ path: string; problem: string }>
}

/** A model version's page. */
export interface ModelPayload {
  manifest: Manifest
  sealOk: boolean
  retired: { reason: string; retired_by: string; retired: string } | null
  /** The card (README.md beside the manifest, else the one `git zoo add` would write), Markdown. */
  card: string
  evaluations: Array<{ path: string; ok: boolean; problem?: string; file: string; data: string; n: number; metrics: Record<string, number>; created: string; evaluator: string }>
  lineage: { focus: string; nodes: Array<{ key: string; name: string; version: number; seal: string; missing?: boolean; sealOk?: boolean }>; edges: Array<{ from: string; to: string; relation: string }>; problems: Array<{ model: string; problem: string }> }
  log: LogEntry[]
  /** Static exports: each file's chunks in order (CID, size), read from the remote and verified in the browser. */
  chunks?: Record<string, Array<[string, number]>>
}

/** `git zoo diff --json` of two model versions. */
export type DiffPayload = {
  a: { name: string; version: number; seal: string }
  b: { name: string; version: number; seal: string }
  weights: FileWeightDiff[]
  storage: StorageShare
} & MetadataDiff
