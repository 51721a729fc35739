#!/usr/bin/env node
/**
 * Bundles the CLI into dist/cli/ (`npm run build`, after tsc), the code bin/git-zoo.js runs: a start
 * that resolves and loads a handful of files instead of the ~100 modules tsc leaves in dist/src/
 * (ESM resolution and loading was most of a warm `git zoo find`; spec/catalog.md, "Start-up").
 *
 *   dist/cli/main.js               src/cli/main.ts: argv, help, dispatch
 *   dist/cli/commands/<name>.js    one entry per src/cli/commands/<name>.ts, loaded by name at run time
 *   dist/cli/hot-<name>.js         add, get and verify (HOT): main.ts and the command in one entry, from
 *                                  a second build of just these entries, so the chunks they share are
 *                                  cut along three entries, not thirty: such a command loads ~6 files,
 *                                  not ~40 (each ES module costs node a resolve, a link and a compile:
 *                                  ~40 ms of a 1 KiB add). bin/git-zoo.js runs it when argv names the
 *                                  command; the process then loads only files of this build (one copy
 *                                  of each module: ZooError is one class)
 *   dist/cli/worker.js             the catalog's build worker (src/catalog/worker.ts; build code finds
 *                                  it as ./worker.js beside the chunk that holds it)
 *   dist/cli/prepare-worker.js     import's file-preparing worker (src/importer/prepare-worker.ts; found
 *                                  the same way, as ./prepare-worker.js)
 *   dist/cli/chunk-*.js            code shared by several of them (esbuild code splitting), loaded
 *                                  only by the entries that import it
 *   dist/cli/meta.json             which source files each output holds (for tests that check what a
 *                                  process loaded, test/lazy-load.test.ts)
 * The small pure-JS packages every store command needs (BUNDLED: multiformats, @ipld/dag-cbor, cborg,
 * @noble/hashes) are bundled in: resolving a package's exports and loading its ~35 files cost more
 * than their code. Every other package stays external (node_modules, resolved at run time, loaded
 * only when used: the AWS SDK, onnxruntime, csv-parse).
 * The bundle is written to a temporary folder and renamed into place, so a failed build leaves the
 * previous one (or none: bin/git-zoo.js then runs dist/src/ from tsc).
 *
 *   node scripts/build-cli.mjs
 */
import { build } from 'esbuild'
import { readdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = join(root, 'dist', 'cli')
const tmp = `${out}.${process.pid}.tmp`
const old = `${out}.${process.pid}.old`

const entryPoints = { main: join(root, 'src', 'cli', 'main.ts'), worker: join(root, 'src', 'catalog', 'worker.ts'), 'prepare-worker': join(root, 'src', 'importer', 'prepare-worker.ts') }
for (const f of await readdir(join(root, 'src', 'cli', 'commands'))) {
  if (f.endsWith('.ts') && !f.endsWith('.d.ts')) entryPoints[`commands/${f.slice(0, -3)}`] = join(root, 'src', 'cli', 'commands', f)
}

/** The commands whose start-up counts most (the data path: issue 11), built as hot-<name>.js entries. */
const HOT = ['add', 'get', 'verify']
/** Packages bundled in (pure JS, needed by every store command); every other one stays external. */
const BUNDLED = new Set(['multiformats', '@ipld/dag-cbor', 'cborg', '@noble/hashes'])
const packageOf = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')
const packages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('node:') || BUNDLED.has(packageOf(a.path)) ? undefined : { path: a.path, external: true }))
  },
}
/**
 * A hot entry's build: `zoo-hot:<name>` is the dispatcher and the command in one module (main finds
 * the command without importing a file), and every module it may import later (a dynamic import:
 * signing, repair, the remote code) is reached through a facade that re-exports it and imports the
 * hot entry too. esbuild splits by the set of entries that reach a module; with the hot entry reached
 * from every entry, everything the command loads at start shares one set, so it is one chunk (plus
 * the entry), and a module loaded later brings only what the start did not (the hot entry it imports
 * is already evaluated by then: this build runs in no other process).
 */
const hotEntry = (name) => ({
  name: 'hot-entry',
  setup(b) {
    const entry = `zoo-hot:${name}`
    b.onResolve({ filter: /^zoo-hot:/ }, (a) => ({ path: a.path.slice('zoo-hot:'.length), namespace: 'zoo-hot' }))
    b.onLoad({ filter: /.*/, namespace: 'zoo-hot' }, (a) => ({
      resolveDir: join(root, 'src', 'cli'), loader: 'ts',
      contents: `export { cli } from './main.ts'\nimport { bundleCommand } from './main.ts'\nimport { command } from './commands/${a.path}.ts'\nbundleCommand(${JSON.stringify(a.path)}, command)\n`,
    }))
    b.onResolve({ filter: /^\./ }, async (a) => {
      if (a.kind !== 'dynamic-import') return undefined
      const r = await b.resolve(a.path, { resolveDir: a.resolveDir, kind: 'import-statement', importer: a.importer })
      return r.errors.length ? { errors: r.errors } : { path: r.path, namespace: 'zoo-facade' }
    })
    b.onLoad({ filter: /.*/, namespace: 'zoo-facade' }, (a) => ({
      resolveDir: dirname(a.path), loader: 'ts',
      contents: `export * from ${JSON.stringify(a.path)}\nimport ${JSON.stringify(entry)}\n`,
    }))
  },
})
const common = {
  outdir: tmp, bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
  metafile: true, logLevel: 'warning', legalComments: 'none', sourcemap: 'linked',
}

await rm(tmp, { recursive: true, force: true })
const result = await build({ ...common, entryPoints, plugins: [packages] })
// the hot entries go to the same folder: their chunks are named by their contents, so a chunk both
// builds made is the same file, and a hot process still finds ./worker.js and ./prepare-worker.js
// one build per hot command, into the same folder: their chunks are named by their contents, and a
// hot process still finds ./worker.js and ./prepare-worker.js beside them
const hotResults = []
for (const n of HOT) hotResults.push(await build({ ...common, entryPoints: { [`hot-${n}`]: `zoo-hot:${n}` }, plugins: [hotEntry(n), packages] }))
/** An input as meta.json names it: relative to the package, a package's file from its node_modules/ on. */
const inputName = (i) => {
  const rel = relative(root, join(root, i)).split('\\').join('/')
  const at = rel.lastIndexOf('node_modules/')
  return at === -1 ? rel : rel.slice(at)
}
const meta = {}
for (const r of [result, ...hotResults]) {
  for (const [file, o] of Object.entries(r.metafile.outputs)) {
    if (!file.endsWith('.js')) continue
    meta[relative(tmp, join(root, file)).split('\\').join('/')] = Object.keys(o.inputs).filter((i) => !/^zoo-(hot|facade):/.test(i)).map(inputName).sort()
  }
}
await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta, null, 1) + '\n')
await rm(old, { recursive: true, force: true })
await rename(out, old).catch(() => {})
await rename(tmp, out)
await rm(old, { recursive: true, force: true })
const files = Object.keys(meta)
const outputs = Object.assign({}, ...[result, ...hotResults].map((r) => r.metafile.outputs))
const bytes = Object.entries(outputs).filter(([f]) => f.endsWith('.js')).reduce((a, [, o]) => a + o.bytes, 0)
process.stderr.write(`cli bundle: dist/cli/ ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB\n`)
