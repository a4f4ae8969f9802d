// The model's parameters as one flat array (llm.c-style): the name (Hugging Face GPT-2's), shape
// and offset of every tensor in it. The model views its params and grads through this layout,
// AdamW decays by it, checkpoints name their tensors by it, and the parameter count is its length.

import type { ModelConfig } from './config';

/** One named tensor inside the flat parameter array. Names are Hugging Face GPT-2's. */
export interface ParamTensor {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** Weight decay applies to matrices (embeddings and Linear weights), never to biases or LN. */
  decay: boolean;
}

/**
 * The parameter layout: names, shapes and offsets in the flat array, in a fixed order. Does not
 * validate cfg (the model does): config.ts re-exports parameterCount from here, so this module
 * takes only types from it.
 */
export function parameterLayout(cfg: ModelConfig): ParamTensor[] {
  const { vocabSize: V, contextLength: P, dModel: C } = cfg;
  const out: ParamTensor[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], decay: boolean): void => {
    const size = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, offset, size, decay });
    offset += size;
  };
  add('transformer.wte.weight', [V, C], true);
  add('transformer.wpe.weight', [P, C], true);
  for (let l = 0; l < cfg.nLayer; l++) {
    const p = `transformer.h.${l}.`;
    add(p + 'ln_1.weight', [C], false);
    add(p + 'ln_1.bias', [C], false);
    add(p + 'attn.c_attn.weight', [C, 3 * C], true);
    add(p + 'attn.c_attn.bias', [3 * C], false);
    add(p + 'attn.c_proj.weight', [C, C], true);
    add(p + 'attn.c_proj.bias', [C], false);
    add(p + 'ln_2.weight', [C], false);
    add(p + 'ln_2.bias', [C], false);
    add(p + 'mlp.c_fc.weight', [C, 4 * C], true);
    add(p + 'mlp.c_fc.bias', [4 * C], false);
    add(p + 'mlp.c_proj.weight', [4 * C, C], true);
    add(p + 'mlp.c_proj.bias', [C], false);
  }
  add('transformer.ln_f.weight', [C], false);
  add('transformer.ln_f.bias', [C], false);
  return out;
}

/** Floats in the flat array a layout describes. */
export function layoutSize(layout: readonly ParamTensor[]): number {
  const last = layout[layout.length - 1];
  return last === undefined ? 0 : last.offset + last.size;
}

/** Number of trainable parameters (tied head: the output matrix is wte, counted once). */
export function parameterCount(cfg: ModelConfig): number {
  return layoutSize(parameterLayout(cfg));
}
