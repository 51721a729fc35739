/**
 * Downloads in a static export: the file's chunks are read from the zoo's HTTP remote
 * (`<remote>/objects/<last 2 chars>/<CID>`, spec/remotes.md), each checked against its CID
 * (sha2-256), the whole file against the manifest's sha256, and only then handed to the browser
 * as a file. The file is assembled in memory: fine for checkpoints up to a few hundred MB.
 */
import { CID } from 'multiformats/cid'

const hex = (b: ArrayBuffer): string => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('')
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

export async function assemble(remote: string, chunks: Array<[string, number]>, size: number, sha256: string, progress: (done: number) => void): Promise<Blob> {
  if (!crypto.subtle) throw new Error('checking downloads needs a secure page (https:// or localhost)')
  const base = remote.replace(/\/+$/, '')
  const parts: Uint8Array[] = []
  let done = 0
  for (const [text, n] of chunks) {
    const cid = CID.parse(text)
    if (cid.multihash.code !== 0x12) throw new Error(`chunk ${text}: not a sha2-256 CID`)
    const r = await fetch(`${base}/objects/${text.slice(-2)}/${text}`)
    if (!r.ok) throw new Error(`chunk ${text}: ${r.status} ${r.statusText} from ${base}`)
    const bytes = new Uint8Array(await r.arrayBuffer())
    if (bytes.length !== n || !equal(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), cid.multihash.digest)) {
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
