/**
 * Manifests as git knows them: every manifest blob reachable from any ref, the reflogs or the
 * index (gc must keep their objects; push uploads those of the refs it pushes).
 */
import { spawn } from 'node:child_process'
import { parseManifest, MANIFEST_FILE, MODELS_DIR, type Manifest } from '../manifest/manifest.js'
import { git } from './git.js'
import { ZooError } from '../errors.js'

const MANIFEST_PATH = new RegExp(`^${MODELS_DIR}/.+/v[1-9]\\d*/${MANIFEST_FILE.replace('.', '\\.')}$`)

/** Blob ids of manifests reachable from `revs` (rev-list arguments, e.g. ['--all', '--reflog', '--indexed-objects']). */
export async function manifestBlobs(root: string, revs: string[], env?: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const text = await git(root, ['rev-list', '--objects', ...revs, '--', `${MODELS_DIR}/`], { env })
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ')
    if (sp === -1) continue
    const path = line.slice(sp + 1)
    if (MANIFEST_PATH.test(path)) out.set(line.slice(0, sp), path)
  }
  return out
}

/** Read blobs through one `git cat-file --batch`. */
export function readBlobs(root: string, ids: string[], env?: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch'], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] })
    const chunks: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => chunks.push(d))
    child.stderr.on('data', (d: Buffer) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) { reject(new ZooError(`git cat-file failed: ${stderr.trim()}`, 'E_GIT')); return }
      const buf = Buffer.concat(chunks)
      const out = new Map<string, string>()
      let p = 0
      for (const id of ids) {
        const nl = buf.indexOf(10, p)
        const header = buf.subarray(p, nl).toString()
        const [, type, size] = header.split(' ')
        if (type !== 'blob') { reject(new ZooError(`git object ${id} is not a blob (${header})`, 'E_GIT')); return }
        const n = Number(size)
        out.set(id, buf.subarray(nl + 1, nl + 1 + n).toString('utf8'))
        p = nl + 1 + n + 1
      }
      resolve(out)
    })
    child.stdin.end(ids.map((i) => i + '\n').join(''))
  })
}

/** Every manifest in the history of `revs`, parsed (seal not checked here). */
export async function historyManifests(root: string, revs: string[], env?: NodeJS.ProcessEnv): Promise<Manifest[]> {
  const blobs = await manifestBlobs(root, revs, env)
  if (blobs.size === 0) return []
  const texts = await readBlobs(root, [...blobs.keys()], env)
  return [...texts.entries()].map(([id, text]) => parseManifest(text, `${blobs.get(id)} (blob ${id.slice(0, 12)})`))
}
