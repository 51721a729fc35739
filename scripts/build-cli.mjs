#!/usr/bin/env node
/**
 * Bundles the CLI into dist/cli/ (`npm run build`, after tsc), the code bin/git-zoo.js runs: a start
 * that resolves and loads a handful of files instead of the ~100 modules tsc leaves in dist/src/
 * (ESM resolution and loading was most of a warm `git zoo find`; spec/catalog.md, "Start-up").
 *
 *   dist/cli/main.js               src/cli/main.ts: argv, help, dispatch
 *   dist/cli/commands/<name>.js    one entry per src/cli/commands/<name>.ts, loaded by name at run time
 *   dist/cli/worker.js             the catalog's build worker (src/catalog/worker.ts; build code finds
 *                                  it as ./worker.js beside the chunk that holds it)
 *   dist/cli/prepare-worker.js     import's file-preparing worker (src/importer/prepare-worker.ts; found
 *                                  the same way, as ./prepare-worker.js)
 *   dist/cli/chunk-*.js            code shared by several of them (esbuild code splitting), loaded
 *                                  only by the entries that import it
 *   dist/cli/meta.json             which source files each output holds (for tests that check what a
 *                                  process loaded, test/lazy-load.test.ts)
 * Packages stay external (node_modules, resolved at run time, loaded only when used).
 * The bundle is written to a temporary folder and renamed into place, so a failed build leaves the
 * previous one (or none: bin/git-zoo.js then runs dist/src/ from tsc).
 *
 *   node scripts/build-cli.mjs
 */
import { build } from 'esbuild'
import { readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = join(root, 'dist', 'cli')
const tmp = `${out}.${process.pid}.tmp`
const old = `${out}.${process.pid}.old`

const entryPoints = { main: join(root, 'src', 'cli', 'main.ts'), worker: join(root, 'src', 'catalog', 'worker.ts'), 'prepare-worker': join(root, 'src', 'importer', 'prepare-worker.ts') }
for (const f of await readdir(join(root, 'src', 'cli', 'commands'))) {
  if (f.endsWith('.ts') && !f.endsWith('.d.ts')) entryPoints[`commands/${f.slice(0, -3)}`] = join(root, 'src', 'cli', 'commands', f)
}

await rm(tmp, { recursive: true, force: true })
const result = await build({
  entryPoints, outdir: tmp, bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
  packages: 'external', metafile: true, logLevel: 'warning', legalComments: 'none', sourcemap: 'linked',
})
const meta = {}
for (const [file, o] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith('.js')) continue
  meta[relative(tmp, join(root, file)).split('\\').join('/')] = Object.keys(o.inputs).map((i) => relative(root, join(root, i)).split('\\').join('/')).sort()
}
await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta, null, 1) + '\n')
await rm(old, { recursive: true, force: true })
await rename(out, old).catch(() => {})
await rename(tmp, out)
await rm(old, { recursive: true, force: true })
const files = Object.keys(meta)
const bytes = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js')).reduce((a, [, o]) => a + o.bytes, 0)
process.stderr.write(`cli bundle: dist/cli/ ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB\n`)
