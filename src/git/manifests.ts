/**
 * Manifests as git knows them: every manifest blob reachable from any ref, the reflogs or the
 * index (gc must keep their objects; push uploads those of the refs it pushes).
 */
import { parseManifest, MANIFEST_FILE, MODELS_DIR, type Manifest } from '../manifest/manifest.js'
import { CatFile } from './catfile.js'
import { git, type GitEnv } from './git.js'
import { ZooError } from '../errors.js'

const MANIFEST_PATH = new RegExp(`^${MODELS_DIR}/.+/v[1-9]\\d*/${MANIFEST_FILE.replace('.', '\\.')}$`)

/** Blob ids of manifests reachable from `revs` (rev-list arguments, e.g. ['--all', '--reflog', '--indexed-objects']). */
export async function manifestBlobs(root: string, revs: string[], env: GitEnv): Promise<Map<string, string>> {
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
export async function readBlobs(root: string, ids: string[], env: GitEnv): Promise<Map<string, string>> {
  const cat = new CatFile(root, env)
  try {
    const objs = await Promise.all(ids.map((id) => cat.read(id)))
    const out = new Map<string, string>()
    for (const [i, o] of objs.entries()) {
      if (!o || o.type !== 'blob') throw new ZooError(`git object ${ids[i]} is not a blob (${o ? o.type : 'missing'})`, 'E_GIT')
      out.set(ids[i]!, o.bytes.toString('utf8'))
    }
    return out
  } finally {
    await cat.close()
  }
}

/** Every manifest in the history of `revs`, parsed (seal not checked here). */
export async function historyManifests(root: string, revs: string[], env: GitEnv): Promise<Manifest[]> {
  const blobs = await manifestBlobs(root, revs, env)
  if (blobs.size === 0) return []
  const texts = await readBlobs(root, [...blobs.keys()], env)
  return [...texts.entries()].map(([id, text]) => parseManifest(text, `${blobs.get(id)} (blob ${id.slice(0, 12)})`))
}
