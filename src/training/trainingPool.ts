// The training pool: piscina worker threads over one shared WebAssembly.Memory holding the
// weights, the AdamW moments, and per-worker gradients and activations. One optimizer step:
//   1. every worker computes the gradient of its micro-batch into its own buffer (in parallel);
//   2. leaders add their children's gradients (the tree's outer ring, leaders in parallel);
//   3. the root adds the leaders' gradients (split by parameter range over the threads);
//   4. the global gradient norm (ranges in parallel), the clip coefficient;
//   5. AdamW on parameter ranges in parallel, reading the root's gradient times the coefficient.
// The main thread only schedules; it never computes on tensors, so it stays responsive.

import Piscina from 'piscina';
import { ModelConfig } from '../ml/config';
import { parameterCount } from '../ml/paramLayout';
import { activationFloats, Gpt, gradActivationFloats } from '../ml/gpt';
import type { MixtureLoss } from '../ml/layers';
import { AdamW, AdamWHyper, clipCoefficient } from '../ml/adamw';
import { WasmArena } from '../ml/arena';
import { compileKernelsChecked } from '../ml/wasmRuntime';
import { createKernelMemory, KERNEL_MAX_PAGES, KERNEL_SCRATCH_BYTES } from '../ml/kernels/wasmKernels';
import type { PoolSetup, PoolTask, SlotRegion } from '../shared/poolProtocol';
import { reductionTree, ReductionTree, splitBatch, splitRange } from './reductionTree';
import { distPath, readKernelWasm } from '../runtime/distFiles';

export interface PoolOptions {
  cfg: ModelConfig;
  /** Sequences per batch and their length. */
  B: number;
  T: number;
  /** Worker threads = members of the reduction tree. */
  threads: number;
  /** Leaders around the root (the seed used 12). */
  fanout: number;
  /** Sequences per forward/backward pass inside a worker (default DEFAULT_SEQS_PER_PASS). */
  seqsPerPass?: number;
}

/**
 * Activations are held for this many sequences at a time: the seed preset needs ~12 MB per
 * sequence, so a worker's memory stays small whatever the batch, and matrix products of 128+ rows
 * still run near the kernel's peak. Gradients are identical (they accumulate over passes).
 */
export const DEFAULT_SEQS_PER_PASS = 1;

export interface StepResult {
  loss: number;
  gradNorm: number;
}

export class TrainingPool {
  readonly threads: number;
  readonly tree: ReductionTree;
  /** Root view of the model: shared weights, root gradients. For checkpoints; never runs forward here. */
  readonly model: Gpt;
  readonly optimizer: AdamW;
  /** Bytes of shared memory in use (weights, moments, gradients, activations, scratch). */
  readonly sharedBytes: number;
  private pool: Piscina;
  private readonly setup: PoolSetup;
  /** Worker-failure recoveries so far (a dead or throwing thread replaced, its step redone). */
  recoveries = 0;
  private readonly B: number;
  private readonly T: number;
  private readonly ids: Int32Array;
  private readonly targets: Int32Array;
  private readonly odds: Float32Array;
  private readonly batch: { starts: number[]; counts: number[] };

  private constructor(opts: PoolOptions, setup: PoolSetup, model: Gpt, optimizer: AdamW, ids: Int32Array, targets: Int32Array, odds: Float32Array, sharedBytes: number) {
    this.setup = setup;
    const pool = startThreads(setup, opts.threads);
    this.threads = opts.threads;
    this.tree = reductionTree(opts.threads, opts.fanout);
    this.pool = pool;
    this.model = model;
    this.optimizer = optimizer;
    this.B = opts.B;
    this.T = opts.T;
    this.ids = ids;
    this.targets = targets;
    this.odds = odds;
    this.batch = splitBatch(opts.B, opts.threads);
    this.sharedBytes = sharedBytes;
  }

  /** Lays out the shared memory and starts the threads. Throws if the kernels or worker are not built. */
  static create(opts: PoolOptions): TrainingPool {
    const wasm = readKernelWasm();
    const workerFile = distPath('trainWorker.js');
    if (wasm === null || workerFile === null) throw new Error('the training kernels are not built (dist/kernels.wasm, dist/trainWorker.js): run `npm run build`');
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new Error(`threads must be a positive integer, got ${opts.threads}`);
    const { cfg, B, T, threads } = opts;
    const seqsPerPass = opts.seqsPerPass ?? DEFAULT_SEQS_PER_PASS;
    const module = compileKernelsChecked(wasm);
    const memory = createKernelMemory(1, KERNEL_MAX_PAGES);
    const arena = new WasmArena(memory);
    const counterPtr = arena.i32(1).byteOffset;
    const scratchPtrs = Array.from({ length: threads }, () => arena.bytes(KERNEL_SCRATCH_BYTES));
    const numParams = parameterCount(cfg);
    const params = arena.f32(numParams);
    const m = arena.f32(numParams);
    const v = arena.f32(numParams);
    const ids = arena.i32(B * T);
    const targets = arena.i32(B * T);
    const odds = arena.f32(B * T);
    const { counts } = splitBatch(B, threads);
    const slots: SlotRegion[] = counts.map((seqs, w) => {
      // Idle members (more workers than sequences) still get a gradient buffer only if they are
      // the root; the others never compute and are left out of the reductions.
      if (seqs === 0 && w !== 0) return { gradsPtr: 0, actsPtr: 0, actsFloats: 0, maxSeqs: 0 };
      const grads = arena.f32(numParams);
      const pass = Math.max(1, Math.min(seqs, seqsPerPass));
      const actsFloats = activationFloats(cfg, pass, T) + gradActivationFloats(cfg, pass, T);
      const acts = arena.f32(actsFloats);
      return { gradsPtr: grads.byteOffset, actsPtr: acts.byteOffset, actsFloats, maxSeqs: seqs };
    });
    const rootGrads = new Float32Array(memory.buffer as SharedArrayBuffer, slots[0]!.gradsPtr, numParams);
    const model = new Gpt(cfg, { params, grads: rootGrads });
    const optimizer = new AdamW(numParams, { m, v });
    const setup: PoolSetup = {
      module, memory, cfg, T, seqsPerPass, paramsPtr: params.byteOffset, mPtr: m.byteOffset, vPtr: v.byteOffset,
      idsPtr: ids.byteOffset, targetsPtr: targets.byteOffset, oddsPtr: odds.byteOffset, slots, scratchPtrs, counterPtr, workerFile,
    };
    return new TrainingPool(opts, setup, model, optimizer, ids, targets, odds, arena.bytesUsed);
  }

  /** Internal: one task on whichever thread is free (tests use it to inject a failing task). */
  run(task: PoolTask): Promise<number> {
    return this.pool.run(task) as Promise<number>;
  }

  private activeSlots(): number[] {
    return this.batch.counts.flatMap((c, w) => (c > 0 ? [w] : []));
  }

  private load(ids: ArrayLike<number>, targets: ArrayLike<number>, odds?: ArrayLike<number>): number {
    const n = this.B * this.T;
    if (ids.length < n || targets.length < n) throw new Error(`pool: expected ${n} ids and targets`);
    if (odds !== undefined) {
      if (odds.length < n) throw new Error(`pool: expected ${n} odds`);
      for (let i = 0; i < n; i++) this.odds[i] = odds[i]!;
    }
    let counted = 0;
    for (let i = 0; i < n; i++) {
      this.ids[i] = ids[i]!;
      this.targets[i] = targets[i]!;
      if (targets[i]! >= 0) counted++;
    }
    return counted;
  }

  /** Sums the workers' gradients into the root's, up the tree. */
  private async reduce(): Promise<void> {
    const n = this.model.numParams;
    const active = new Set(this.activeSlots());
    const gathers = this.tree.leaders
      .map((l) => ({ dst: l.leader, srcs: l.children.filter((c) => active.has(c)) }))
      .filter((g) => active.has(g.dst) && g.srcs.length > 0);
    if (gathers.length > 0) {
      const parts = Math.max(1, Math.ceil(this.threads / gathers.length));
      await Promise.all(gathers.flatMap((g) => splitRange(n, parts).map(([lo, hi]) => this.run({ kind: 'reduce', dst: g.dst, srcs: g.srcs, lo, hi }))));
    }
    const leaders = this.tree.leaders.map((l) => l.leader).filter((l) => active.has(l));
    if (leaders.length > 0) {
      await Promise.all(splitRange(n, this.threads).map(([lo, hi]) => this.run({ kind: 'reduce', dst: this.tree.root, srcs: leaders, lo, hi })));
    }
  }

  /**
   * Replaces every worker thread (after one died or threw): the weights, moments and gradients
   * live in the shared memory, which outlives the threads, so nothing is lost but the step.
   */
  private async restartThreads(): Promise<void> {
    this.recoveries++;
    await this.pool.destroy().catch(() => undefined);
    new Int32Array(this.setup.memory.buffer as SharedArrayBuffer, this.setup.counterPtr, 1)[0] = 0;
    this.pool = startThreads(this.setup, this.threads);
  }

  /**
   * Runs `phase`; if a worker fails (throws or dies), replaces the threads and runs it once more.
   * Only for phases that can be redone from scratch (gradients, norms, evaluation).
   */
  private async retrying<T>(what: string, phase: () => Promise<T>): Promise<T> {
    try {
      return await phase();
    } catch (first) {
      await this.restartThreads();
      try {
        return await phase();
      } catch (second) {
        throw new Error(`a training worker failed twice while ${what}: ${(second as Error).message} (first: ${(first as Error).message})`);
      }
    }
  }

  /**
   * One optimizer step on a [B,T] batch (with mixture: of the mixture loss, ml/countsOdds.ts).
   * Returns the batch's mean loss (the GPT's cross-entropy) and the pre-clip gradient norm.
   */
  async trainStep(ids: ArrayLike<number>, targets: ArrayLike<number>, hyper: AdamWHyper, gradClip: number, mixture?: MixtureLoss): Promise<StepResult> {
    const denom = this.load(ids, targets, mixture?.odds);
    const mixtureTask = mixture === undefined ? null : { plainShare: mixture.plainShare };
    if (denom === 0) throw new Error('pool: batch has no targets');
    const { starts, counts } = this.batch;
    const n = this.model.numParams;
    const ranges = splitRange(n, this.threads);
    // Gradients, tree reduction and norm can be recomputed from scratch if a worker fails:
    // every gradient task starts by zeroing its slot, and nothing touched the weights yet.
    const { loss, gradNorm } = await this.retrying('computing gradients', async () => {
      const losses = await Promise.all(this.activeSlots().map((w) => this.run({ kind: 'grad', slot: w, seqStart: starts[w]!, seqCount: counts[w]!, lossDenominator: denom, mixture: mixtureTask })));
      await this.reduce();
      const squares = await Promise.all(ranges.map(([lo, hi]) => this.run({ kind: 'sumsq', slot: this.tree.root, lo, hi })));
      return { loss: losses.reduce((a, b) => a + b, 0), gradNorm: Math.sqrt(squares.reduce((a, b) => a + b, 0)) };
    });
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) return { loss, gradNorm };
    const gradScale = clipCoefficient(gradNorm, gradClip);
    const t = ++this.optimizer.step;
    try {
      await Promise.all(ranges.map(([lo, hi]) => this.run({ kind: 'adamw', slot: this.tree.root, lo, hi, t, gradScale, ...hyper })));
    } catch (e) {
      // Part of the weights may already be updated: this step cannot be redone in place.
      await this.restartThreads();
      throw new Error(`a training worker failed during the optimizer update of step ${t}: ${(e as Error).message}; resume from the last checkpoint`);
    }
    return { loss, gradNorm };
  }

  /** Mean loss of a [B,T] batch (targets < 0 are ignored). */
  async evaluate(ids: ArrayLike<number>, targets: ArrayLike<number>): Promise<number> {
    const denom = this.load(ids, targets);
    if (denom === 0) return NaN;
    const { starts, counts } = this.batch;
    return this.retrying('evaluating', async () => {
      const parts = await Promise.all(this.activeSlots().map((w) => this.run({ kind: 'eval', slot: w, seqStart: starts[w]!, seqCount: counts[w]!, lossDenominator: denom })));
      return parts.reduce((a, b) => a + b, 0);
    });
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function startThreads(setup: PoolSetup, threads: number): Piscina {
  return new Piscina({
    filename: setup.workerFile,
    minThreads: threads,
    maxThreads: threads,
    // Idle threads block in Atomics.wait (no spinning) and are never torn down mid-run.
    atomics: 'sync',
    idleTimeout: Number.MAX_SAFE_INTEGER,
    workerData: setup,
  });
}
