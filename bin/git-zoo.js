#!/usr/bin/env node
// `git zoo ...` runs this as `git-zoo ...`. `npm run build` compiles the CLI with tsc into dist/src/
// and bundles it into dist/cli/ (scripts/build-cli.mjs: a few files to load instead of ~100, so a
// command starts faster); this runs the bundle, or dist/src/ when there is no bundle.
import { existsSync } from 'node:fs'

const bundle = new URL('../dist/cli/main.js', import.meta.url)
const compiled = new URL('../dist/src/cli/main.js', import.meta.url)
const entry = existsSync(bundle) ? bundle : existsSync(compiled) ? compiled : undefined
if (entry === undefined) {
  const { fileURLToPath } = await import('node:url')
  process.stderr.write('git zoo: the CLI is not built; run `npm run build` in ' + fileURLToPath(new URL('..', import.meta.url)) + '\n')
  process.exit(3)
}
const { cli } = await import(entry.href)
// cli() builds the process's Io, installs the SIGINT/SIGTERM handlers and runs main (src/cli/main.ts)
process.exitCode = await cli(process.argv.slice(2))
