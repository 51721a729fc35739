/** Benchmark fixtures: safetensors-shaped checkpoints written in streaming fashion. */
import { openSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'

export const TENSOR = 16 * 1024 * 1024

/** A safetensors file of F32 tensors of 16 MiB; tensors in `changed` get other values. */
export function writeCheckpoint(path: string, size: number, changed: Set<number>, salt: number): void {
  const count = Math.floor(size / TENSOR)
  const header: Record<string, unknown> = {}
  for (let i = 0; i < count; i++) header[`blocks.${String(i).padStart(3, '0')}.weight`] = { dtype: 'F32', shape: [TENSOR / 4], data_offsets: [i * TENSOR, (i + 1) * TENSOR] }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const fd = openSync(path, 'w')
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(json.length))
  writeSync(fd, len); writeSync(fd, Buffer.from(json))
  const buf = Buffer.alloc(TENSOR)
  for (let i = 0; i < count; i++) {
    let x = (i + 1) * 2654435761 + (changed.has(i) ? salt * 97 : 0)
    for (let j = 0; j < TENSOR; j += 4) { x = (x ^ (x << 13)) >>> 0; x = (x ^ (x >>> 17)) >>> 0; x = (x ^ (x << 5)) >>> 0; buf.writeUInt32LE(x, j) }
    writeSync(fd, buf)
  }
  closeSync(fd)
}


/** A base checkpoint and a fine-tune of it that changes every tenth tensor (90% shared). */
export function writeBaseAndFineTune(dir: string, size: number): { base: string; fineTune: string; tensors: number; changed: number } {
  const base = join(dir, 'model.safetensors')
  const fineTune = join(dir, 'finetune.safetensors')
  const tensors = Math.floor(size / TENSOR)
  writeCheckpoint(base, size, new Set(), 0)
  const changed = new Set(Array.from({ length: Math.max(1, Math.round(tensors / 10)) }, (_, k) => k * 10 % tensors))
  writeCheckpoint(fineTune, size, changed, 1)
  return { base, fineTune, tensors, changed: changed.size }
}
