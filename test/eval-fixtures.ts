/** Shared fixtures of test/onnx.test.ts and test/judge.test.ts: small models, datasets, zips. */
import { deflateRawSync, crc32 } from 'node:zlib'
import { encodeMlpOnnx } from '../src/onnx/encode.js'

const C = 8

/** logits = x W^T + b with W a permutation matrix (identity by default): predictions are argmax(x) mapped. */
export function permModel(perm: number[] = [...Array(C).keys()]): Uint8Array {
  const w = new Float32Array(C * C)
  perm.forEach((p, i) => { w[i * C + p] = 1 })
  return encodeMlpOnnx([{ name: 'layers.0.weight', shape: [C, C], data: w }, { name: 'layers.0.bias', shape: [C], data: new Float32Array(C) }], { activation: 'relu' })
}

/** 20 samples: the largest feature is class i % 8; the first 15 labels agree with it, the last 5 do not. */
export function dataset(): { x: Float32Array; y: Int32Array; n: number } {
  const n = 20
  const x = new Float32Array(n * C), y = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    const c = i % C
    for (let j = 0; j < C; j++) x[i * C + j] = 0.1 * ((i + 3 * j) % 7)
    x[i * C + c] = 2
    y[i] = i < 15 ? c : (c + 1 + (i % 3)) % C
  }
  return { x, y, n }
}

/** Independent reference metrics for logits (float64; argmax and ranks with ties to the lower class). */
export function reference(logits: Float32Array, y: Int32Array): { accuracy: number; loss: number; top5: number } {
  const n = y.length
  let correct = 0, loss = 0, top5 = 0
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * C, i * C + C))
    const order = row.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, j]) => j)
    if (order[0] === y[i]) correct++
    if (order.slice(0, 5).includes(y[i]!)) top5++
    const max = Math.max(...row)
    loss += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[y[i]!]!
  }
  return { accuracy: correct / n, loss: loss / n, top5: top5 / n }
}

/** A stored-or-deflated zip (enough for .npz and PyTorch checkpoints). */
export function zipFile(entries: Array<{ name: string; data: Uint8Array; deflate?: boolean }>): Uint8Array {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const e of entries) {
    const body = e.deflate ? deflateRawSync(e.data) : Buffer.from(e.data)
    const name = Buffer.from(e.name)
    const crc = crc32(e.data)
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(e.deflate ? 8 : 0, 8)
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(body.length, 18); local.writeUInt32LE(e.data.length, 22); local.writeUInt16LE(name.length, 26)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt16LE(e.deflate ? 8 : 0, 10)
    central.writeUInt32LE(crc, 16); central.writeUInt32LE(body.length, 20); central.writeUInt32LE(e.data.length, 24); central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE(offset, 42)
    locals.push(local, name, body)
    centrals.push(central, name)
    offset += 30 + name.length + body.length
  }
  const cd = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, cd, end])
}

