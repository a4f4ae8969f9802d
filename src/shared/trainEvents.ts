// Training progress events: produced by the trainer, consumed by the CLI (progress bar or one JSON
// object per line with --json), and later by the language server's notifications and the sidebar.
// Declared once here; field names are snake_case because they are also the CLI's JSON output.

/** counts: the count models' predictions of every training token, for the mixture loss (ml/countsOdds.ts). */
export type Phase = 'indexing' | 'tokenizer' | 'encoding' | 'counts' | 'training' | 'done';

/** Files and bytes left out for one reason; skipped folders (never walked) count in `dirs`. */
export interface SkipTallyEvent { files: number; bytes: number; dirs: number }

export type TrainEvent =
  | { event: 'phase'; phase: Phase }
  /** Progress inside a phase, fraction in [0,1] (indexing reports files seen instead). */
  | { event: 'progress'; phase: Phase; fraction: number; detail?: string }
  /** `secrets`: redacted secrets per rule (e.g. aws_access_key: 2), over all kept files. */
  | { event: 'corpus'; files: number; bytes: number; train_files: number; val_files: number; skipped: Record<string, SkipTallyEvent>; secrets: Record<string, number> }
  | { event: 'tokenizer'; vocab_size: number; seconds: number; reused: boolean }
  | { event: 'dataset'; train_tokens: number; val_tokens: number; bytes_per_token: number }
  /** The count models on the training tokens, cross-fitted (nats/token): what the mixture loss trains the GPT against. */
  | { event: 'counts'; tokens: number; files: number; ngram_nats: number; counts_nats: number; seconds: number }
  | { event: 'model'; engine: string; params: number; n_layer: number; n_head: number; n_embd: number; context: number; vocab_size: number; batch: number; total_steps: number; resumed_from_step: number }
  | { event: 'step'; step: number; total_steps: number; epoch: number; loss: number; lr: number; grad_norm: number; tokens_per_s: number; elapsed_s: number; eta_s: number }
  | { event: 'eval'; step: number; val_loss: number }
  | { event: 'checkpoint'; step: number; dir: string }
  | { event: 'warning'; message: string }
  | { event: 'paused'; step: number }
  | { event: 'resumed'; step: number }
  | { event: 'done'; steps: number; train_loss: number | null; val_loss: number | null; tokens_per_s: number; elapsed_s: number; tokens_seen: number; stopped: boolean; out_dir: string; peak_rss_mb: number };

export type TrainEventSink = (e: TrainEvent) => void;
