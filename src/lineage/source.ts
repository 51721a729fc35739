/** The zoo as a ManifestSource: manifests from the work tree, children from the catalog. */
import type { Repo } from '../repo.js'
import { checkSeal, type Manifest } from '../manifest/manifest.js'
import { UnknownModelError } from '../errors.js'
import { openCatalog } from '../catalog/catalog.js'
import { Lineage } from '../catalog/query.js'
import type { ManifestSource } from './graph.js'

export async function zooSource(repo: Repo): Promise<ManifestSource & { close(): void }> {
  const opened = await openCatalog({ cwd: repo.root, env: repo.env })
  const c = opened.file
  let lineage: Lineage | undefined
  const rowOf = new Map<string, number>()
  const version = c.f64('version')
  for (let i = 0; i < c.count; i++) rowOf.set(`${c.str('name', i)}@v${version![i]}`, i)
  return {
    async read(name, v) {
      try { return await repo.readManifest(name, v) } catch (err) {
        if (err instanceof UnknownModelError) return undefined
        throw err
      }
    },
    async children(name, v) {
      lineage ??= new Lineage(c)
      const r = rowOf.get(`${name}@v${v}`)
      if (r === undefined) return []
      return lineage.childrenOf(r).map((i) => ({ name: c.str('name', i)!, version: version![i]! }))
    },
    sealOk: (m: Manifest) => checkSeal(m).ok,
    close: () => c.close(),
  }
}
