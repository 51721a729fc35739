#!/usr/bin/env node
// `git zoo ...` runs this as `git-zoo ...`. The CLI is compiled to dist/ (npm install runs `tsc`).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const entry = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('git zoo: the CLI is not built; run `npm run build` in ' + fileURLToPath(new URL('..', import.meta.url)) + '\n')
  process.exit(3)
}
const { main, processIo } = await import(entry.href)
process.exitCode = await main(process.argv.slice(2), processIo())
