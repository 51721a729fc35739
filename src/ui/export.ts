/**
 * `git zoo ui --export <dir>`: the web app as static files, its data as JSON files the pages load
 * (spec/ui.md, "Static export"), publishable with any static web server, e.g. beside the zoo's
 * HTTP remote. Downloads then read the files' chunks from that remote, each checked in the browser
 * against its CID. The whole site is written into a temporary folder beside <dir> and renamed into
 * place at the end, so an interrupted export leaves no half-written site.
 */
import { mkdir, readFile, open, rename, rm, readdir, rmdir } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import type { Repo } from '../repo.js'
import { UsageError } from '../errors.js'
import { tempName, fsyncDir } from '../cas/atomic.js'
import { readLog } from '../promote/log.js'
import { zooSource } from '../lineage/source.js'
import { zooRemotes } from '../remote/sync.js'
import { openReader } from '../zoo/reader.js'
import { catalogPayload, historyBytes, modelPayload, chunkPlan, openUiCatalog, zooTitle } from './data.js'
import { ASSETS } from './server.js'
import type { AppInfo } from './shapes.js'

export interface ExportOptions {
  /** The zoo remote whose URL downloads use (default: the default remote when it is http(s), else the only http(s) one). */
  remote?: string
  version: string
  assets: string
  signal?: AbortSignal
  progress?: (done: number, total: number) => void
}

export interface ExportSummary { dir: string; models: number; files: number; bytes: number; remote: string | null; remoteNote?: string }

/** The http(s) zoo remote downloads will use, or null with why. */
async function downloadRemote(repo: Repo, name: string | undefined): Promise<{ url: string | null; note?: string }> {
  const all = await zooRemotes(repo)
  const web = (u: string): boolean => /^https?:\/\//i.test(u)
  if (name) {
    const r = all.find((x) => x.name === name)
    if (!r) throw new UsageError(`no zoo remote named ${name}; ${all.length ? `the zoo has ${all.map((x) => x.name).join(', ')}` : 'add one with `git zoo remote add <name> <url>`'}`, 'E_UNKNOWN_ZOO_REMOTE', { remote: name })
    if (!web(r.url)) throw new UsageError(`zoo remote ${name} is ${r.url}, not an http(s) URL a browser can read; give an HTTP remote (git zoo remote add <name> https://...)`, 'E_BAD_URL', { remote: name })
    return { url: r.url }
  }
  const config = await repo.config()
  const pick = all.find((r) => r.name === config.default_remote && web(r.url)) ?? all.find((r) => web(r.url))
  if (pick) return { url: pick.url }
  return { url: null, note: all.length ? `no zoo remote is an http(s) URL (${all.map((r) => `${r.name}: ${r.url}`).join(', ')}), so the export's download links say \`git zoo get\` instead` : 'the zoo has no zoo remote, so the export\'s download links say `git zoo get` instead; add an HTTP remote (git zoo remote add <name> https://...) and export again' }
}

export async function exportSite(repo: Repo, dir: string, o: ExportOptions): Promise<ExportSummary> {
  try {
    const entries = await readdir(dir)
    if (entries.length) throw new UsageError(`${dir} is not empty; export into a new or empty folder`, 'E_NOT_EMPTY', { dir })
  } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
  const remote = await downloadRemote(repo, o.remote)
  const tmp = tempName(dir)
  await rm(tmp, { recursive: true, force: true })
  let bytes = 0, files = 0
  const put = async (rel: string, data: string | Uint8Array): Promise<void> => {
    const p = join(tmp, rel)
    await mkdir(dirname(p), { recursive: true })
    const fh = await open(p, 'wx')
    try { await fh.writeFile(data); await fh.sync() } finally { await fh.close() }
    bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length
    files++
  }
  try {
    for (const file of new Set(Object.values(ASSETS).map((a) => a.file))) {
      const bytes = await readFile(join(o.assets, file))
      await put(file, file === 'index.html' ? bytes.toString('utf8').replace('<meta name="zoo-mode" content="live">', '<meta name="zoo-mode" content="static">') : bytes)
    }
    const info: AppInfo = { mode: 'static', zoo: zooTitle(repo), version: o.version, remote: remote.url }
    await put('data/info.json', JSON.stringify(info))
    const c = await openUiCatalog(repo)
    const refs: string[] = []
    try {
      const { json: payload, bin, lazy } = catalogPayload(c)
      await put('data/catalog.json', JSON.stringify(payload))
      await put('data/catalog.bin', bin)
      for (const [col, text] of lazy) await put(`data/columns/${col}.json`, text)
      for (const metric of Object.keys(payload.history)) await put(`data/history/${encodeURIComponent(metric)}.f64`, historyBytes(c, metric)!)
      const version = c.f64('version')!
      for (let i = 0; i < c.count; i++) refs.push(`${c.str('name', i)}@v${version[i]}`)
    } finally { c.close() }
    const log = await readLog(repo)
    await put('data/log.json', JSON.stringify({ entries: log }))
    const src = await zooSource(repo)
    const store = await openReader(repo)
    try {
      for (let i = 0; i < refs.length; i++) {
        o.signal?.throwIfAborted()
        const p = await modelPayload(repo, refs[i]!, { log, src })
        if (remote.url) p.chunks = await chunkPlan(store, p.manifest)
        const at = refs[i]!.lastIndexOf('@v')
        await put(`data/models/${refs[i]!.slice(0, at)}/v${refs[i]!.slice(at + 2)}.json`, JSON.stringify(p))
        o.progress?.(i + 1, refs.length)
      }
    } finally { src.close(); await store.close() }
    try { await rmdir(dir) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    await rename(tmp, dir)
    await fsyncDir(dirname(dir))
    return { dir, models: refs.length, files, bytes, remote: remote.url, ...(remote.note ? { remoteNote: remote.note } : {}) }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
