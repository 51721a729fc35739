#!/usr/bin/env node
// Writes the manual pages (man/man1/git-zoo*.1) from the built CLI's help (src/cli/manpages.ts) and
// lists them under `man` in package.json, where `npm install -g` / `npm link` install them from.
// Run by `npm run build` after tsc; pages of commands that are gone are removed.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const { manPages, MAN_DIR } = await import(new URL('../dist/src/cli/manpages.js', import.meta.url).href)
const pages = await manPages()
const dir = join(root, MAN_DIR)
await mkdir(dir, { recursive: true })
for (const f of await readdir(dir)) if (/^git-zoo.*\.1$/.test(f) && !pages.has(f)) await rm(join(dir, f))
let written = 0
for (const [name, text] of pages) {
  const path = join(dir, name)
  const old = await readFile(path, 'utf8').catch(() => null)
  if (old !== text) { await writeFile(path, text); written++ }
}
const pkgPath = join(root, 'package.json')
const pkgText = await readFile(pkgPath, 'utf8')
const pkg = JSON.parse(pkgText)
const list = [...pages.keys()].map((n) => `./${MAN_DIR}/${n}`)
if (JSON.stringify(pkg.man) !== JSON.stringify(list)) {
  pkg.man = list
  await writeFile(pkgPath, JSON.stringify(pkg, null, 2) + '\n')
  process.stderr.write(`man-pages: updated the "man" list in package.json (${list.length} pages)\n`)
}
if (written) process.stderr.write(`man-pages: wrote ${written} of ${pages.size} pages in ${MAN_DIR}/\n`)
