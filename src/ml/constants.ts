// Numbers of the model that its implementations must agree on. Compiled twice: by tsc for the
// TypeScript layers (./layers.ts) and by asc for the WebAssembly kernels (./kernels/assembly/),
// so this file holds plain numeric constants only (valid TypeScript and AssemblyScript; a float
// literal is an f64 in AssemblyScript).

/**
 * Added to the variance in every layernorm: GPT-2's layer_norm_epsilon. The PyTorch twin
 * (scripts/gpt2_torch.py, LAYER_NORM_EPSILON) and the exported config.json carry the same value.
 */
export const LAYERNORM_EPS = 1e-5;
