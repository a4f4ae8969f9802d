// Where kernels.wasm keeps its own static data. An active data segment is (re)written into the
// shared memory every time a thread instantiates the module, so tensors must never live there:
// arenas start at RESERVED_STATIC_BYTES, and this check proves the module's data fits below it.

/** Bytes at the bottom of the shared memory left to the module's static data. */
export const RESERVED_STATIC_BYTES = 65536;

/** End (exclusive) of the highest active data segment of a wasm binary; 0 if it has none. */
export function staticDataEnd(wasm: Uint8Array): number {
  let p = 8; // magic + version
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = wasm[p++]!;
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) return result;
    }
  };
  const sleb32 = (): number => {
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = wasm[p++]!;
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return shift < 32 && byte & 0x40 ? result | (~0 << shift) : result;
  };
  let end = 0;
  while (p < wasm.length) {
    const id = wasm[p++]!;
    const size = leb();
    const next = p + size;
    if (id === 11) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const kind = leb();
        if (kind === 1) { // passive: written only by memory.init, never at instantiation
          p += leb();
          continue;
        }
        if (kind === 2) leb(); // explicit memory index
        if (wasm[p++] !== 0x41) throw new Error('kernels.wasm: unsupported data segment offset expression');
        const offset = sleb32() >>> 0;
        if (wasm[p++] !== 0x0b) throw new Error('kernels.wasm: malformed data segment offset');
        const len = leb();
        p += len;
        end = Math.max(end, offset + len);
      }
    }
    p = next;
  }
  return end;
}
