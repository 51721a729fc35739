/**
 * A strict JSON parser for untrusted headers. Unlike JSON.parse it
 *   - rejects duplicate keys (JSON.parse keeps the last one silently),
 *   - keeps numbers as their source text (so 2^64 or 1.0 can be told apart from an integer),
 *   - builds objects without a prototype (`__proto__` is an ordinary key),
 *   - rejects lone surrogate escapes (not representable in UTF-8) and caps nesting depth.
 * Whitespace around the value is allowed, as in RFC 8259.
 */
export class JsonNumber {
  constructor(readonly raw: string) {}
}
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject
export type JsonObject = { [key: string]: JsonValue }

export class JsonSyntaxError extends Error {}

const MAX_DEPTH = 64

export function parseStrictJson(text: string): JsonValue {
  let pos = 0
  const fail = (what: string): never => { throw new JsonSyntaxError(`${what} at character ${pos}`) }
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++
      else return
    }
  }
  const hex4 = (): number => {
    const h = text.slice(pos, pos + 4)
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape')
    pos += 4
    return parseInt(h, 16)
  }
  const string = (): string => {
    pos++ // opening quote
    let out = ''
    let start = pos
    for (;;) {
      if (pos >= text.length) fail('unterminated string')
      const c = text.charCodeAt(pos)
      if (c === 0x22) { out += text.slice(start, pos); pos++; return out }
      if (c < 0x20) fail('control character in string')
      if (c !== 0x5c) { pos++; continue }
      out += text.slice(start, pos)
      pos++
      const e = text[pos++]
      switch (e) {
        case '"': out += '"'; break
        case '\\': out += '\\'; break
        case '/': out += '/'; break
        case 'b': out += '\b'; break
        case 'f': out += '\f'; break
        case 'n': out += '\n'; break
        case 'r': out += '\r'; break
        case 't': out += '\t'; break
        case 'u': {
          const u = hex4()
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text.slice(pos, pos + 2) !== '\\u') fail('lone surrogate escape')
            pos += 2
            const low = hex4()
            if (low < 0xdc00 || low > 0xdfff) fail('lone surrogate escape')
            out += String.fromCharCode(u, low)
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail('lone surrogate escape')
          } else {
            out += String.fromCharCode(u)
          }
          break
        }
        default: fail('bad escape')
      }
      start = pos
    }
  }
  const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail('nesting too deep')
    ws()
    const c = text[pos]
    if (c === '{') {
      pos++
      const obj: JsonObject = Object.create(null) as JsonObject
      ws()
      if (text[pos] === '}') { pos++; return obj }
      for (;;) {
        ws()
        if (text[pos] !== '"') fail('expected a key')
        const key = string()
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate key ${JSON.stringify(key)}`)
        ws()
        if (text[pos] !== ':') fail('expected ":"')
        pos++
        obj[key] = value(depth + 1)
        ws()
        if (text[pos] === ',') { pos++; continue }
        if (text[pos] === '}') { pos++; return obj }
        fail('expected "," or "}"')
      }
    }
    if (c === '[') {
      pos++
      const arr: JsonValue[] = []
      ws()
      if (text[pos] === ']') { pos++; return arr }
      for (;;) {
        arr.push(value(depth + 1))
        ws()
        if (text[pos] === ',') { pos++; continue }
        if (text[pos] === ']') { pos++; return arr }
        fail('expected "," or "]"')
      }
    }
    if (c === '"') return string()
    if (text.startsWith('true', pos)) { pos += 4; return true }
    if (text.startsWith('false', pos)) { pos += 5; return false }
    if (text.startsWith('null', pos)) { pos += 4; return null }
    NUMBER.lastIndex = pos
    const m = NUMBER.exec(text)
    if (m && m[0].length > 0) { pos += m[0].length; return new JsonNumber(m[0]) }
    return fail('unexpected character')
  }
  const v = value(0)
  ws()
  if (pos !== text.length) fail('trailing characters after the JSON value')
  return v
}
