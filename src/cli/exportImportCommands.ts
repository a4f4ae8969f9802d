// `workspace-lm export` and `workspace-lm import`: a run's PyTorch training bundle out, a model
// trained elsewhere back in as the served model (src/run/exportBundle.ts does the work).

import * as path from 'node:path';
import { exportBundle, importModel, resolveRunDir } from '../run/exportBundle';
import { parse, UsageError } from './commands';
import { defaultRunDir } from '../run/layout';

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { to: { type: 'string' }, 'no-weights': { type: 'boolean' }, json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('export needs exactly one folder or run directory: workspace-lm export <folder|run-dir> --to DIR');
  if (values.to === undefined) throw new UsageError('export needs --to DIR (where the bundle goes)');
  const runDir = await resolveRunDir(positionals[0]!);
  const r = await exportBundle(runDir, values.to, { weights: values['no-weights'] !== true });
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ event: 'export', ...r }) + '\n');
    return 0;
  }
  // Paths as the user would type them here: relative below the current folder, else absolute.
  const show = (p: string): string => {
    const rel = path.relative(process.cwd(), p);
    return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? p : rel;
  };
  const rel = show(r.dir);
  const lines = [
    `exported ${r.runDir}`,
    `      to ${r.dir}`,
    `  model  ${(r.params / 1e6).toFixed(2)}M params, ${r.weights ? `weights of ${r.step !== null ? `step ${r.step}` : 'the imported model'}${r.valLoss !== null ? ` (val loss ${r.valLoss.toFixed(4)})` : ''}` : 'no weights (trains from scratch)'}`,
    `  data   ${r.trainTokens.toLocaleString('en-US')} training tokens, ${r.valTokens.toLocaleString('en-US')} validation tokens`,
    `  files  ${r.files.join(' ')}`,
    '',
    `train:   cd ${rel} && python3 train_torch.py --out out   (several GPUs or machines: see README.md)`,
    `then:    workspace-lm import ${path.join(rel, 'out')} --out ${show(r.runDir)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

export async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('import needs exactly one model folder: workspace-lm import DIR [--out RUN_DIR]');
  const runDir = path.resolve(values.out ?? defaultRunDir(process.cwd()));
  const r = await importModel(positionals[0]!, runDir);
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ event: 'import', ...r }) + '\n');
    return 0;
  }
  const t = r.trained;
  const lines = [
    `imported ${r.source}`,
    `      as ${r.checkpointDir}`,
    `  model  GPT-2, ${(r.params / 1e6).toFixed(2)}M params, vocab ${r.vocabSize}, context ${r.contextLength}` +
      (t !== null ? `; trained ${t.step ?? '?'} steps in PyTorch${t.valLoss !== null ? `, val loss ${t.valLoss.toFixed(4)}` : ''}` : ''),
    `It is now the served model of ${r.runDir} (a running language server swaps it in within seconds).`,
  ];
  if (r.tokenizerMatchesData === false) {
    lines.push(`note: its tokenizer differs from the one ${path.join(r.runDir, 'data')} was encoded with; training this run again starts anew.`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
