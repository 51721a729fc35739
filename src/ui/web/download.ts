/**
 * Downloads in a static export: the file's chunks are read from the zoo's HTTP remote (spec/remotes.md):
 * from its packs (`packs/packs.txt` names the indexes; an object is one `Range` request of its pack),
 * else as loose objects of a layout-1 remote (`objects/<last 2 chars>/<CID>`); each is checked
 * against its CID (sha2-256 through WebCrypto, or BLAKE3, which WebCrypto lacks, with @noble/hashes:
 * spec/format.md, "Chunk hash"), the whole file against the manifest's sha256, and only then handed
 * to the browser as a file. The file is assembled in memory: fine for checkpoints up to a few hundred MB.
 */
import { CID } from 'multiformats/cid'
import { blake3 } from '@noble/hashes/blake3'

const hex = (b: ArrayBuffer | Uint8Array): string => [...(b instanceof Uint8Array ? b : new Uint8Array(b))].map((x) => x.toString(16).padStart(2, '0')).join('')
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

interface Entry { pack: string; offset: number; length: number }

/** Every object the remote's pack indexes list, by the hex of its CID bytes (empty on a layout-1 remote). */
async function packIndex(base: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>()
  const list = await fetch(`${base}/packs/packs.txt`)
  if (!list.ok) return out
  const names = (await list.text()).split('\n').map((l) => l.trim().replace(/^packs\//, '')).filter((n) => /^pack-[0-9a-z-]+\.idx$/.test(n))
  for (const name of names) {
    const r = await fetch(`${base}/packs/${name}`)
    if (!r.ok) continue
    const b = new Uint8Array(await r.arrayBuffer())
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
    if (b.length < 44 || new TextDecoder().decode(b.subarray(0, 8)) !== 'ZOOIDX01') continue
    const count = v.getUint32(8, true)
    const end = b.length - 32
    let p = 12
    for (let i = 0; i < count && p < end; i++) {
      const n = b[p]!; p += 1
      const key = hex(b.subarray(p, p + n)); p += n
      const offset = v.getUint32(p, true) + v.getUint32(p + 4, true) * 2 ** 32; p += 8
      const length = v.getUint32(p, true); p += 4
      if (!out.has(key)) out.set(key, { pack: name.replace(/\.idx$/, '.pack'), offset, length })
    }
  }
  return out
}

export async function assemble(remote: string, chunks: Array<[string, number]>, size: number, sha256: string, progress: (done: number) => void): Promise<Blob> {
  if (!crypto.subtle) throw new Error('checking downloads needs a secure page (https:// or localhost)')
  const base = remote.replace(/\/+$/, '')
  const parts: Uint8Array[] = []
  const index = await packIndex(base)
  let done = 0
  for (const [text, n] of chunks) {
    const cid = CID.parse(text)
    // raw chunks are named by sha2-256 (0x12) or BLAKE3 (0x1e), as the zoo's chunk_hash said when they were added
    const code = cid.multihash.code
    if (cid.code !== 0x55 || (code !== 0x12 && code !== 0x1e) || cid.multihash.digest.length !== 32) throw new Error(`chunk ${text}: not a raw sha2-256 or blake3 CID`)
    const e = index.get(hex(cid.bytes))
    const r = e
      ? await fetch(`${base}/packs/${e.pack}`, { headers: { Range: `bytes=${e.offset}-${e.offset + e.length - 1}` } })
      : await fetch(`${base}/objects/${text.slice(-2)}/${text}`)
    if (!r.ok) throw new Error(`chunk ${text}: ${r.status} ${r.statusText} from ${base}`)
    let bytes = new Uint8Array(await r.arrayBuffer())
    if (e && r.status === 200) bytes = bytes.subarray(e.offset, e.offset + e.length) // a server that ignores Range sent the whole pack
    const digest = code === 0x1e ? blake3(bytes) : new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    if (bytes.length !== n || !equal(digest, cid.multihash.digest)) {
      throw new Error(`chunk ${text} from ${base} does not match its CID: refusing the download`)
    }
    parts.push(bytes)
    done += bytes.length
    progress(done)
  }
  const all = new Uint8Array(done)
  let at = 0
  for (const p of parts) { all.set(p, at); at += p.length }
  if (done !== size || hex(await crypto.subtle.digest('SHA-256', all)) !== sha256) throw new Error(`the chunks give ${done} bytes that do not match the manifest's sha256: refusing the download`)
  return new Blob([all], { type: 'application/octet-stream' })
}
