// Loader and typed API for the WebAssembly SIMD128 kernels (source: ./assembly/, built by
// esbuild.mjs into dist/kernels.wasm; the list of kernels and their arguments: ./kernelTable.ts).
//
// Pure layer: no fs here. The caller passes the wasm bytes (or an already compiled module,
// which is what a worker_thread receives via postMessage) and the memory.
//
// Memory model: every tensor lives in ONE shared WebAssembly.Memory created by JS and
// imported by each instance (one instance per worker thread). The kernels take byte
// offsets into it; they allocate nothing. Each instance needs its own packing scratch
// region in that memory (KERNEL_SCRATCH_BYTES is a good size), set at creation.
//
// The project's lib is ES2022 without DOM, so the WebAssembly global has no type
// declarations; the few pieces used are typed structurally below (a real
// WebAssembly.Memory / Module satisfies them).

import { KERNELS, KernelFunctions, KernelName, KernelSignature, SCRATCH_EXPORTS, WasmFunction } from './kernelTable';

/** Structural type of a WebAssembly.Memory. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(deltaPages: number): number;
}

/** Opaque compiled module (a WebAssembly.Module); can be posted to worker threads. */
export interface WasmModule {
  readonly __wasmModuleBrand?: never;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => {
    readonly exports: Record<string, unknown>;
  };
  Memory: new (desc: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Bytes per WebAssembly page. */
export const WASM_PAGE_BYTES = 65536;
/** Largest memory the module declares (65536 pages = 4 GiB, the wasm32 limit). */
export const KERNEL_MAX_PAGES = 65536;
/** Recommended per-instance scratch: tile + packed A block + a 256×~2000 packed B block. */
export const KERNEL_SCRATCH_BYTES = 2 * 1024 * 1024 + 256 * 1024;

/**
 * matmul flags (bit set, combine with |). Shapes (row-major):
 *   0        C[M,N] = A[M,K]  · B[K,N]
 *   TRANS_B  C[M,N] = A[M,K]  · B[N,K]ᵀ
 *   TRANS_A  C[M,N] = A[K,M]ᵀ · B[K,N]
 *   (TRANS_A|TRANS_B also works: A[K,M]ᵀ · B[N,K]ᵀ)
 *   ACCUMULATE: C += … instead of C = …
 *   BIAS:       … + bias[N] on every row (once, also when accumulating)
 */
export const MatmulFlags = {
  NONE: 0,
  TRANS_A: 1,
  TRANS_B: 2,
  ACCUMULATE: 4,
  BIAS: 8,
} as const;

/**
 * One instance of the kernels (KERNELS in ./kernelTable.ts: byte offsets into `memory`, element
 * counts) with its packing scratch.
 */
export interface Kernels extends KernelFunctions {
  readonly memory: WasmMemory;
  /** Minimum scratch size the module accepts (~136 KB). */
  readonly scratchMinBytes: number;
  /** Replace this instance's packing scratch region (16-byte aligned). Throws if rejected. */
  setScratch(ptr: number, bytes: number): void;
}

/** New shared memory suitable for the kernels (sizes in 64 KiB pages). */
export function createKernelMemory(initialPages: number, maximumPages: number): WasmMemory {
  if (maximumPages > KERNEL_MAX_PAGES) throw new RangeError(`maximumPages ${maximumPages} > ${KERNEL_MAX_PAGES}`);
  return new WA.Memory({ initial: initialPages, maximum: maximumPages, shared: true });
}

/** Compile the kernels once (e.g. on the main thread) to share the module with workers. */
export function compileKernels(wasmBytes: Uint8Array): WasmModule {
  return new WA.Module(wasmBytes);
}

/**
 * Instantiate the kernels on `memory` (must be shared, maximum ≤ 65536 pages) with the
 * packing scratch [scratch.ptr, scratch.ptr + scratch.bytes) inside it. Synchronous.
 */
export function createKernels(
  wasm: Uint8Array | WasmModule,
  memory: WasmMemory,
  scratch: { ptr: number; bytes: number },
): Kernels {
  if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(
      'kernels.wasm imports a *shared* memory: create it with createKernelMemory() or ' +
        'new WebAssembly.Memory({ initial, maximum, shared: true })',
    );
  }
  const module = wasm instanceof Uint8Array ? new WA.Module(wasm) : wasm;
  const exports = new WA.Instance(module, { env: { memory } }).exports;
  const scratchMinBytes = wasmFunction(exports, SCRATCH_EXPORTS.scratchMinBytes)();
  const setScratchRaw = wasmFunction(exports, SCRATCH_EXPORTS.setScratch);
  const setScratch = (ptr: number, bytes: number): void => {
    const end = ptr + bytes;
    if (end > memory.buffer.byteLength || ptr < 0) {
      throw new RangeError(`scratch [${ptr}, ${end}) is outside memory (${memory.buffer.byteLength} bytes)`);
    }
    if (setScratchRaw(ptr, bytes) !== 1) {
      throw new RangeError(`scratch rejected: ptr ${ptr} must be 16-byte aligned and bytes ${bytes} ≥ ${scratchMinBytes}`);
    }
  };
  setScratch(scratch.ptr, scratch.bytes);
  // The exports themselves, no wrappers: a kernel call costs one JS → wasm transition.
  const kernels: Partial<Record<KernelName, unknown>> = {};
  for (const name of Object.keys(KERNELS) as KernelName[]) kernels[name] = wasmFunction(exports, KERNELS[name]);
  return { ...(kernels as KernelFunctions), memory, scratchMinBytes, setScratch };
}

/**
 * The export of `sig`, checked against the table: a kernels.wasm that does not match this code
 * (a stale build) fails here, naming the kernel, rather than at its first call.
 */
function wasmFunction<S extends KernelSignature>(exports: Record<string, unknown>, sig: S): WasmFunction<S> {
  const fn = exports[sig.wasm];
  if (typeof fn !== 'function') throw new Error(`kernels.wasm has no export ${sig.wasm} (rebuild it: node esbuild.mjs)`);
  // A wasm function's length is its number of parameters.
  if (fn.length !== sig.args.length) {
    throw new Error(`kernels.wasm: ${sig.wasm} takes ${fn.length} arguments, kernelTable.ts says ${sig.args.length} (rebuild it: node esbuild.mjs)`);
  }
  return fn as WasmFunction<S>;
}
