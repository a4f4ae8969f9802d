// What executes optimizer steps: the worker pool with WASM SIMD kernels (the normal case), or the
// plain TypeScript model on the calling thread when the kernels are not built (slow, but the
// same math: it is the twin the kernels are tested against).

import { ModelConfig } from '../ml/config';
import { Gpt } from '../ml/gpt';
import { AdamW, AdamWHyper, clipGradNorm } from '../ml/adamw';
import type { MixtureLoss } from '../ml/layers';
import { StepResult, TrainingPool } from './trainingPool';
import { distPath } from '../runtime/distFiles';

export interface TrainEngine {
  /** Weights (and, for the in-process engine, gradients) — what checkpoints save. */
  readonly model: Gpt;
  readonly optimizer: AdamW;
  /** For progress output: "wasm-simd, 2 threads". */
  readonly description: string;
  /** One optimizer step; with mixture (the counts' odds of each target), of the mixture loss. */
  step(ids: ArrayLike<number>, targets: ArrayLike<number>, hyper: AdamWHyper, gradClip: number, mixture?: MixtureLoss): Promise<StepResult>;
  evaluate(ids: ArrayLike<number>, targets: ArrayLike<number>): Promise<number>;
  close(): Promise<void>;
}

export interface EngineOptions {
  cfg: ModelConfig;
  B: number;
  T: number;
  threads: number;
  fanout: number;
}

class PoolEngine implements TrainEngine {
  readonly model: Gpt;
  readonly optimizer: AdamW;
  readonly description: string;
  private readonly pool: TrainingPool;

  constructor(pool: TrainingPool) {
    this.pool = pool;
    this.model = pool.model;
    this.optimizer = pool.optimizer;
    this.description = `wasm-simd, ${pool.threads} thread${pool.threads === 1 ? '' : 's'}`;
  }

  step(ids: ArrayLike<number>, targets: ArrayLike<number>, hyper: AdamWHyper, gradClip: number, mixture?: MixtureLoss): Promise<StepResult> {
    return this.pool.trainStep(ids, targets, hyper, gradClip, mixture);
  }

  evaluate(ids: ArrayLike<number>, targets: ArrayLike<number>): Promise<number> {
    return this.pool.evaluate(ids, targets);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

class InProcessEngine implements TrainEngine {
  readonly model: Gpt;
  readonly optimizer: AdamW;
  readonly description = 'typescript, 1 thread (kernels not built)';
  private readonly B: number;
  private readonly T: number;

  constructor(opts: EngineOptions) {
    this.model = new Gpt(opts.cfg);
    this.optimizer = new AdamW(this.model.numParams);
    this.B = opts.B;
    this.T = opts.T;
  }

  async step(ids: ArrayLike<number>, targets: ArrayLike<number>, hyper: AdamWHyper, gradClip: number, mixture?: MixtureLoss): Promise<StepResult> {
    this.model.zeroGrad();
    const loss = this.model.forward(ids, targets, this.B, this.T, undefined, mixture ?? null);
    this.model.backward();
    const gradNorm = clipGradNorm(this.model.grads, gradClip);
    if (Number.isFinite(loss) && Number.isFinite(gradNorm)) this.optimizer.update(this.model.params, this.model.grads, this.model.layout, hyper);
    return { loss, gradNorm };
  }

  async evaluate(ids: ArrayLike<number>, targets: ArrayLike<number>): Promise<number> {
    return this.model.evaluate(ids, targets, this.B, this.T);
  }

  async close(): Promise<void> {}
}

/** The pool when the kernels are built, else the TypeScript engine (with `fallbackReason` set). */
export function createEngine(opts: EngineOptions): { engine: TrainEngine; fallbackReason: string | null } {
  if (distPath('kernels.wasm') === null || distPath('trainWorker.js') === null) {
    return { engine: new InProcessEngine(opts), fallbackReason: 'dist/kernels.wasm or dist/trainWorker.js is missing (run `npm run build`): training with the slow TypeScript kernels on one thread' };
  }
  return { engine: new PoolEngine(TrainingPool.create(opts)), fallbackReason: null };
}
