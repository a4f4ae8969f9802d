// A piscina worker thread of the training pool. It attaches to the shared memory set up by the
// main thread, claims its own kernel scratch, and runs tasks: gradients of a micro-batch, one
// range of a tree reduction, a slice of the norm or of the AdamW update. It holds no state of its
// own beyond views; any thread can run any slot's task.

// Node's own workerData: piscina passes ours through unchanged (and this works when bundled).
import { workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../runtime/priority';
import type { PoolSetup, PoolTask } from '../shared/poolProtocol';
import { Gpt } from '../ml/gpt';
import { layoutSize, parameterLayout, ParamTensor } from '../ml/paramLayout';
import { attachWasmRuntime, WasmRuntime } from '../ml/wasmRuntime';
import type { Floats } from '../ml/layers';

interface WorkerState {
  setup: PoolSetup;
  rt: WasmRuntime;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  ids: Int32Array;
  targets: Int32Array;
  odds: Float32Array;
  layout: ParamTensor[];
  numParams: number;
  grads: Float32Array[];
  /** A model view per slot, made on first use (its activations live in the slot's region). */
  models: Map<number, Gpt>;
}

let state: WorkerState | null = null;
lowerThreadPriority();

function init(): WorkerState {
  const setup = workerData as PoolSetup;
  const buf = setup.memory.buffer as SharedArrayBuffer;
  const counter = new Int32Array(buf, setup.counterPtr, 1);
  const index = Atomics.add(counter, 0, 1);
  const scratch = setup.scratchPtrs[index];
  if (scratch === undefined) throw new Error(`training pool: worker ${index} has no scratch region (${setup.scratchPtrs.length} reserved)`);
  const rt = attachWasmRuntime(setup.module, setup.memory, scratch);
  const layout = parameterLayout(setup.cfg);
  const numParams = layoutSize(layout);
  const maxSeqs = Math.max(...setup.slots.map((s) => s.maxSeqs));
  return {
    setup, rt, layout, numParams,
    params: new Float32Array(buf, setup.paramsPtr, numParams),
    m: new Float32Array(buf, setup.mPtr, numParams),
    v: new Float32Array(buf, setup.vPtr, numParams),
    ids: new Int32Array(buf, setup.idsPtr, maxSeqs * setup.slots.length * setup.T),
    targets: new Int32Array(buf, setup.targetsPtr, maxSeqs * setup.slots.length * setup.T),
    odds: new Float32Array(buf, setup.oddsPtr, maxSeqs * setup.slots.length * setup.T),
    grads: setup.slots.map((s) => (s.maxSeqs > 0 || s.gradsPtr !== 0 ? new Float32Array(buf, s.gradsPtr, numParams) : new Float32Array(0))),
    models: new Map(),
  };
}

/** The slot's model: shared weights, the slot's gradients, activations bump-allocated in its region. */
function slotModel(s: WorkerState, slot: number): Gpt {
  let model = s.models.get(slot);
  if (model !== undefined) return model;
  const region = s.setup.slots[slot]!;
  const acts = new Float32Array(s.setup.memory.buffer as SharedArrayBuffer, region.actsPtr, region.actsFloats);
  let used = 0;
  const alloc = (n: number): Floats => {
    if (used + n > acts.length) throw new Error(`training pool: slot ${slot} activation region too small`);
    const view = acts.subarray(used, used + n);
    used += n;
    return view;
  };
  model = new Gpt(s.setup.cfg, { params: s.params, grads: s.grads[slot]!, alloc, ops: s.rt.ops });
  s.models.set(slot, model);
  return model;
}

/** AdamW over params[lo:hi] with the SIMD kernel, tensor by tensor (decay differs per tensor). */
function adamwRange(s: WorkerState, task: Extract<PoolTask, { kind: 'adamw' }>): void {
  const k = s.rt.kernels;
  const bc1 = 1 - Math.pow(task.beta1, task.t);
  const bc2Sqrt = Math.sqrt(1 - Math.pow(task.beta2, task.t));
  const stepSize = task.lr / bc1;
  const grads = s.grads[task.slot]!;
  for (const tensor of s.layout) {
    const lo = Math.max(task.lo, tensor.offset);
    const hi = Math.min(task.hi, tensor.offset + tensor.size);
    if (lo >= hi) continue;
    const decay = tensor.decay ? 1 - task.lr * task.weightDecay : 1;
    k.adamwUpdate(s.params.byteOffset + 4 * lo, grads.byteOffset + 4 * lo, s.m.byteOffset + 4 * lo, s.v.byteOffset + 4 * lo, hi - lo,
      task.beta1, task.beta2, task.eps, decay, stepSize, bc2Sqrt, task.gradScale);
  }
}

export default function handle(task: PoolTask): number {
  const s = (state ??= init());
  const T = s.setup.T;
  switch (task.kind) {
    case 'grad':
    case 'eval': {
      // The slot's sequences go through the model a few at a time (setup.seqsPerPass): the
      // activations of one pass are what memory holds, and the gradients simply accumulate.
      const model = slotModel(s, task.slot);
      if (task.kind === 'grad') model.zeroGrad();
      let loss = 0;
      for (let done = 0; done < task.seqCount; done += s.setup.seqsPerPass) {
        const n = Math.min(s.setup.seqsPerPass, task.seqCount - done);
        const lo = (task.seqStart + done) * T;
        const ids = s.ids.subarray(lo, lo + n * T);
        const targets = s.targets.subarray(lo, lo + n * T);
        if (task.kind === 'eval') {
          loss += model.evaluate(ids, targets, n, T, task.lossDenominator);
        } else {
          const mixture = task.mixture === null ? null : { odds: s.odds.subarray(lo, lo + n * T), plainShare: task.mixture.plainShare };
          loss += model.forward(ids, targets, n, T, task.lossDenominator, mixture);
          model.backward();
        }
      }
      return loss;
    }
    case 'reduce': {
      const k = s.rt.kernels;
      const n = task.hi - task.lo;
      const dst = s.grads[task.dst]!;
      for (const src of task.srcs) k.sumInto(dst.byteOffset + 4 * task.lo, s.grads[src]!.byteOffset + 4 * task.lo, n);
      return 0;
    }
    case 'sumsq':
      return s.rt.kernels.sumSquares(s.grads[task.slot]!.byteOffset + 4 * task.lo, task.hi - task.lo);
    case 'adamw':
      adamwRange(s, task);
      return 0;
  }
}
