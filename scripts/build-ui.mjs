/**
 * Builds git zoo's web app into dist/ui/ (`npm run build`, and `npm test`'s pretest, after tsc):
 * src/ui/web/main.ts and all it imports (uPlot, dagre, marked, multiformats' CID, the catalog's
 * query code) bundled by esbuild into one app.js for the browser; uPlot's CSS and ours in app.css;
 * index.html. Nothing is loaded from the network at run time. Each file is written beside its
 * target and renamed into place.
 *
 *   node scripts/build-ui.mjs
 */
import { build } from 'esbuild'
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const web = join(root, 'src', 'ui', 'web')
const out = join(root, 'dist', 'ui')

await mkdir(out, { recursive: true })
const result = await build({
  entryPoints: [join(web, 'main.ts')],
  bundle: true, minify: true, format: 'iife', platform: 'browser', target: ['es2022'],
  outfile: join(out, 'app.js.tmp'), legalComments: 'none', logLevel: 'warning', metafile: true,
})
const css = [await readFile(join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8'), await readFile(join(web, 'app.css'), 'utf8')].join('\n')
await writeFile(join(out, 'app.css.tmp'), css)
await writeFile(join(out, 'index.html.tmp'), await readFile(join(web, 'index.html')))
for (const f of ['app.js', 'app.css', 'index.html']) await rename(join(out, `${f}.tmp`), join(out, f))
const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0)
process.stderr.write(`web app: dist/ui/app.js ${(bytes / 1024).toFixed(0)} KiB, app.css ${(css.length / 1024).toFixed(0)} KiB\n`)
