// Workspace LM — fast float32 kernels in WebAssembly SIMD128 (AssemblyScript).
//
// Compiled by esbuild.mjs to dist/kernels.wasm (flags there: --runtime stub --importMemory
// --sharedMemory --maximumMemory 65536 --enable simd,threads --noAssert -O3). Loaded by
// ../wasmKernels.ts. The module owns NO linear memory: it imports env.memory (shared, so
// several worker_threads can run kernels on the same tensors), has no data segments, no
// allocator and no GC. Every pointer is a byte offset into that memory chosen by the caller;
// every size is in elements. All matrices are row-major float32.
//
// This file is the module's entry: its exports are the wasm exports (and nothing else is).
// The kernels live by concern:
//   gemm.ts       matmul (packed BLIS-style loop nest, M < 4 streaming path) and its scratch
//   math.ts       4-lane exp/tanh, elementwise adds and sums, GELU
//   rowwise.ts    fused softmax + cross-entropy, row scaling, layernorm, causal softmax rows
//   attention.ts  causal self-attention around matmul_ld
//   adamw.ts      AdamW update, Σx² for the gradient norm
// Each kernel is the SIMD twin of a plain-TS function in ../reference.ts, ../../layers.ts or
// ../../adamw.ts.

export { matmul, matmul_ld, scratch_min_bytes, set_scratch } from './gemm';
export { add, colsum_into, exp_f32, gelu_backward, gelu_forward, sum_into, tanh_f32 } from './math';
export {
  causal_softmax_backward_rows, causal_softmax_rows, cross_entropy_forward_backward, layernorm_backward, layernorm_forward, scale_rows,
} from './rowwise';
export { attention_backward, attention_forward } from './attention';
export { adamw_update, sum_squares } from './adamw';
