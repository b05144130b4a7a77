// Shortens the names under which the Wasm imports its JS glue functions. wasm-bindgen names each
// `__wbg_<name>_<16 hex digits>`: about 90 of them, each written in the .wasm and in the glue, and
// random hex compresses badly (~1.4 KB gzip of the core, see docs/BENCHMARKS.md). Only the names
// change: the same functions are imported, in the same order, with the same types.
// Used by scripts/package-client.mjs, which renames the glue's side with the map returned here.

const HASHED_NAME = /^__wbg_[\w$]*_[0-9a-f]{16}$/;

/** Unsigned LEB128 at `offset`: `[value, nextOffset]`. */
function readU32(bytes, offset) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[offset++];
    value |= (byte & 0x7f) << shift;
    if (byte < 0x80) return [value >>> 0, offset];
    shift += 7;
  }
}

function writeU32(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** The end of a `limits` (table or memory import) starting at `offset`. */
function skipLimits(bytes, offset) {
  const flags = bytes[offset++];
  [, offset] = readU32(bytes, offset);
  if (flags & 1) [, offset] = readU32(bytes, offset);
  return offset;
}

/**
 * Renames every hashed import name of `wasm` (a Uint8Array) to `_<index in base 36>`.
 * Returns the new module and the map from old to new names; a module with no hashed names (one
 * already shortened) comes back unchanged with an empty map.
 */
export function shortenImportNames(wasm) {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const renames = new Map();
  let offset = 8; // magic and version
  while (offset < wasm.length) {
    const sectionStart = offset;
    const id = wasm[offset++];
    let size;
    [size, offset] = readU32(wasm, offset);
    const contentStart = offset;
    const contentEnd = contentStart + size;
    if (id !== 2) {
      offset = contentEnd;
      continue;
    }
    let count;
    [count, offset] = readU32(wasm, offset);
    const content = [...writeU32(count)];
    const name = () => {
      let length;
      [length, offset] = readU32(wasm, offset);
      const text = decoder.decode(wasm.subarray(offset, offset + length));
      offset += length;
      return text;
    };
    const pushName = (text) => {
      const encoded = encoder.encode(text);
      content.push(...writeU32(encoded.length), ...encoded);
    };
    for (let index = 0; index < count; index++) {
      pushName(name());
      const field = name();
      if (HASHED_NAME.test(field)) renames.set(field, `_${renames.size.toString(36)}`);
      pushName(renames.get(field) ?? field);
      const descStart = offset;
      const kind = wasm[offset++];
      if (kind === 0) [, offset] = readU32(wasm, offset); // function: type index
      else if (kind === 1) offset = skipLimits(wasm, offset + 1); // table: reference type, limits
      else if (kind === 2) offset = skipLimits(wasm, offset); // memory: limits
      else if (kind === 3) offset += 2; // global: value type, mutability
      else if (kind === 4) [, offset] = readU32(wasm, offset + 1); // tag: attribute, type index
      else throw new Error(`import of unknown kind ${kind}`);
      content.push(...wasm.subarray(descStart, offset));
    }
    if (offset !== contentEnd) throw new Error("the import section did not parse to its end");
    if (renames.size === 0) return { wasm, renames };
    const section = Uint8Array.from([2, ...writeU32(content.length), ...content]);
    const out = new Uint8Array(sectionStart + section.length + (wasm.length - contentEnd));
    out.set(wasm.subarray(0, sectionStart), 0);
    out.set(section, sectionStart);
    out.set(wasm.subarray(contentEnd), sectionStart + section.length);
    return { wasm: out, renames };
  }
  return { wasm, renames };
}

/** `code` with every old name of `renames` (whole identifiers only) replaced by its new one. */
export function renameInGlue(code, renames) {
  if (renames.size === 0) return code;
  const pattern = new RegExp(`(?<![\\w$])(${[...renames.keys()].join("|").replaceAll("$", "\\$")})(?![\\w$])`, "g");
  return code.replace(pattern, (old) => renames.get(old));
}
