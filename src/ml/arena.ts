// Where tensors live. A model takes a FloatAlloc: plain typed arrays on the JS heap (TypeScript
// ops, float64 gradient checks), or views into one WebAssembly.Memory (the SIMD kernels address
// tensors by byte offset, and worker threads share that memory).

import type { Floats } from './layers';
import { WASM_PAGE_BYTES, WasmMemory } from './kernels/wasmKernels';
import { RESERVED_STATIC_BYTES } from './kernels/staticData';

export type FloatAlloc = (n: number) => Floats;

export function heapAlloc(dtype: 'float32' | 'float64'): FloatAlloc {
  return dtype === 'float32' ? (n) => new Float32Array(n) : (n) => new Float64Array(n);
}

/**
 * A bump allocator over a shared WebAssembly.Memory: 64-byte aligned regions, never freed (a
 * training run allocates once). Growing a shared memory never moves it, so views created before
 * a grow stay valid (they just see the old length of the buffer object).
 */
export class WasmArena {
  readonly memory: WasmMemory;
  private used: number;

  /** Starts above the kernels' static data, which each thread's instantiation rewrites. */
  constructor(memory: WasmMemory, startByte = RESERVED_STATIC_BYTES) {
    this.memory = memory;
    this.used = startByte;
  }

  get bytesUsed(): number {
    return this.used;
  }

  private reserve(bytes: number, align: number): number {
    const start = Math.ceil(this.used / align) * align;
    const end = start + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / WASM_PAGE_BYTES));
    this.used = end;
    return start;
  }

  f32(n: number): Float32Array {
    const start = this.reserve(4 * n, 64);
    return new Float32Array(this.memory.buffer, start, n);
  }

  i32(n: number): Int32Array {
    const start = this.reserve(4 * n, 64);
    return new Int32Array(this.memory.buffer, start, n);
  }

  /** A raw region (e.g. a kernel instance's packing scratch): its byte offset. */
  bytes(n: number, align = 64): number {
    return this.reserve(n, align);
  }

  readonly alloc: FloatAlloc = (n) => this.f32(n);
}
