import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

/**
 * The project root: the folder holding package.json, hooks/ and .zoo-template/. Found by walking up
 * from this module, so it is the same from `src/` (tsx) and from `dist/src/` (the built CLI).
 */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, '.zoo-template'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`git-zoo: cannot find the project root above ${fileURLToPath(import.meta.url)}`)
    dir = up
  }
}

export const PROJECT_ROOT = projectRoot()
export const version: string = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version
