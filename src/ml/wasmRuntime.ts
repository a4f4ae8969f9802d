// One thread's view of the WASM SIMD backend: the shared memory, an arena over it, a kernel
// instance with its own packing scratch, and the Ops that run on them. The main thread creates
// the memory and arena; worker threads attach to the same memory with their own scratch.

import { WasmArena } from './arena';
import { Ops, wasmOps } from './ops';
import { RESERVED_STATIC_BYTES, staticDataEnd } from './kernels/staticData';
import { compileKernels, createKernelMemory, createKernels, Kernels, KERNEL_MAX_PAGES, KERNEL_SCRATCH_BYTES, WasmMemory, WasmModule } from './kernels/wasmKernels';

export interface WasmRuntime {
  module: WasmModule;
  memory: WasmMemory;
  kernels: Kernels;
  ops: Ops;
}

/** A fresh shared memory and arena, plus this thread's kernels (scratch taken from the arena). */
export function createWasmRuntime(wasm: Uint8Array): WasmRuntime & { arena: WasmArena } {
  const module = compileKernelsChecked(wasm);
  const memory = createKernelMemory(1, KERNEL_MAX_PAGES);
  const arena = new WasmArena(memory);
  const scratch = arena.bytes(KERNEL_SCRATCH_BYTES);
  const kernels = createKernels(module, memory, { ptr: scratch, bytes: KERNEL_SCRATCH_BYTES });
  return { module, memory, arena, kernels, ops: wasmOps(kernels, (n) => arena.i32(n)) };
}

/** Compiles kernels.wasm after checking its static data stays below the arenas. */
export function compileKernelsChecked(wasm: Uint8Array): WasmModule {
  const end = staticDataEnd(wasm);
  if (end > RESERVED_STATIC_BYTES) throw new Error(`kernels.wasm has static data up to byte ${end}, above the ${RESERVED_STATIC_BYTES} bytes reserved for it`);
  return compileKernels(wasm);
}

/** Attaches to an existing memory (a worker thread) with a scratch region reserved for it. */
export function attachWasmRuntime(module: WasmModule, memory: WasmMemory, scratchPtr: number): WasmRuntime {
  const kernels = createKernels(module, memory, { ptr: scratchPtr, bytes: KERNEL_SCRATCH_BYTES });
  return { module, memory, kernels, ops: wasmOps(kernels) };
}
