/**
 * Bad input refused before it is sealed (spec/formats.md, "Refused input"): a file whose name
 * claims a format its bytes do not hold (random bytes named .safetensors), or a known format whose
 * layout is truncated or malformed (the description's warning), is refused unless the promotion
 * allows it, in which case it is stored and recorded as opaque bytes (`format: "unknown"`,
 * `malformed: <why>` in its manifest entry). The check runs on the format description in this
 * layer, never inside the chunking pipeline.
 */
import { open } from 'node:fs/promises'
import { describeFile, parseSafetensorsHeader, type FormatName, type ReadAt } from '../formats/index.js'
import { describeOnnx } from '../onnx/inspect.js'
import { CheckError } from '../errors.js'

/** What a file name's extension claims. */
const CLAIMS: Record<string, FormatName[]> = {
  safetensors: ['safetensors'], onnx: ['onnx'], gguf: ['gguf'], npy: ['npy'], npz: ['npz', 'zip'],
  pt: ['pytorch-zip', 'pickle', 'zip'], pth: ['pytorch-zip', 'pickle', 'zip'], h5: ['hdf5'], hdf5: ['hdf5'],
  pkl: ['pickle'], pickle: ['pickle'],
}

/** The formats a name's extension claims, or undefined when it claims none the zoo reads. */
export function claimedFormats(name: string): FormatName[] | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(name)
  return m ? CLAIMS[m[1]!.toLowerCase()] : undefined
}

/** Why a file's name and bytes disagree, or undefined when they agree (or the name claims nothing). */
export function nameProblem(name: string, format: string): string | undefined {
  const claims = claimedFormats(name)
  if (!claims || claims.includes(format as FormatName)) return undefined
  return `its name says ${claims[0]} but its bytes are ${format === 'unknown' ? 'not in any format git-zoo knows' : `${format}`}`
}

/** Read the file's header now: the name check and the layout checks that need only headers. */
export async function precheckFile(source: string, path: string): Promise<string | undefined> {
  const fd = await open(source, 'r')
  try {
    const { size } = await fd.stat()
    const read: ReadAt = async (offset, length) => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)))
      const { bytesRead } = await fd.read(buf, 0, buf.length, offset)
      return buf.subarray(0, bytesRead)
    }
    const desc = await describeFile(read, size)
    const named = nameProblem(path, desc.format)
    if (named) {
      const why = await whyNot(claimedFormats(path)![0]!, read, size)
      return why ? `${named} (as ${claimedFormats(path)![0]}: ${why})` : named
    }
    return desc.warning ? `malformed ${desc.format}: ${desc.warning}` : undefined
  } finally { await fd.close() }
}

/** What the claimed format's own reader says about the bytes (a truncation, a bad header), if it says anything. */
async function whyNot(format: FormatName, read: ReadAt, size: number): Promise<string | undefined> {
  try {
    if (format === 'onnx') return (await describeOnnx(read, size)).warning?.replace(/^onnx: /, '')
    if (format === 'safetensors') {
      const head = await read(0, Math.min(size, 1 << 20))
      if (size < 8) return `${size} bytes, shorter than the 8-byte header length`
      const n = Buffer.from(head.buffer, head.byteOffset, head.byteLength).readBigUInt64LE(0)
      if (n > BigInt(size - 8)) return `the header length field says ${n} bytes but the file has ${size - 8} after it`
      parseSafetensorsHeader(await read(0, Math.min(size, 8 + Number(n))), size)
    }
  } catch (err) { return (err as Error).message }
  return undefined
}

export function malformedError(model: string, source: string, problem: string): CheckError {
  return new CheckError(`${source}: ${problem}; nothing was promoted for ${model}. Re-export or re-download the file, or pass --allow-malformed to store it as opaque bytes (recorded as malformed in the manifest)`,
    'E_MALFORMED', { model, path: source, problem })
}
