// Incremental re-indexing: editing one file re-reads and re-encodes only that file, the result is
// the same as a full rebuild, a change of the redaction rules re-reads everything, a large change retrains the tokenizer, and `--retrain` starts a new
// run from the previous model's weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, BuildInput } from '../src/corpus/datasetBuilder';
import { BpeTokenizer } from '../src/ml/bpe';
import type { TrainEvent } from '../src/shared/trainEvents';

function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wlm-incr-'));
  for (let i = 0; i < 30; i++) {
    writeFileSync(join(dir, `mod${i}.ts`), `export function f${i}(x: number): number {\n  return x * ${i} + ${i % 7};\n}\n`.repeat(20));
  }
  return dir;
}

const quiet = (_: TrainEvent): void => undefined;

test('editing one file re-reads and re-encodes only that file, with the same result as a full build', async () => {
  const dir = fixture();
  const cacheDir = join(dir, '..', `${dir.split('/').pop()}-data`);
  const base: BuildInput = { folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: null, cacheDir };
  const first = await buildDataset(base, quiet);
  assert.equal(first.stats.filesRead, 30);
  assert.equal(first.stats.tokenizerTrained, true);

  const again = await buildDataset({ ...base, tokenizerJson: first.tokenizerJson }, quiet);
  assert.equal(again.stats.filesRead, 0, 'nothing changed: nothing is read');
  assert.equal(again.stats.filesReused, 30);
  assert.deepEqual(again.train, first.train);
  assert.deepEqual(again.val, first.val);

  writeFileSync(join(dir, 'mod3.ts'), 'export const changed = "a new body";\n'.repeat(10));
  utimesSync(join(dir, 'mod3.ts'), new Date(), new Date(Date.now() + 5000)); // a distinct mtime
  const edited = await buildDataset({ ...base, tokenizerJson: first.tokenizerJson }, quiet);
  assert.equal(edited.stats.filesRead, 1, 'only the edited file is read');
  assert.equal(edited.stats.filesEncoded, 1);
  assert.equal(edited.stats.filesReused, 29);
  // Same tokens as encoding everything from scratch with that tokenizer.
  const full = await buildDataset({ folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: first.tokenizerJson }, quiet);
  assert.equal(full.stats.filesRead, 30);
  assert.deepEqual(edited.train, full.train);
  assert.deepEqual(edited.val, full.val);
  assert.notDeepEqual(edited.train.length + edited.val.length, first.train.length + first.val.length);
});

test('a change of the redaction rules (here extraSecretPatterns) re-reads every file: cached tokens hold no unredacted secret', async () => {
  const dir = fixture();
  writeFileSync(join(dir, 'config.ts'), 'export const licence = "ACME-314159";\n'.repeat(5));
  const cacheDir = join(dir, '..', `${dir.split('/').pop()}-data`);
  const base: BuildInput = { folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: null, cacheDir };
  const first = await buildDataset(base, quiet);
  const decoded = (out: { train: Uint16Array; val: Uint16Array; tokenizerJson: unknown }): string => {
    const tok = BpeTokenizer.fromHuggingFaceJSON(out.tokenizerJson);
    const ids = [...out.train, ...out.val].filter((id) => !tok.isSpecialId(id));
    return Buffer.from(tok.decodeBytes(ids)).toString('latin1');
  };
  assert.ok(decoded(first).includes('ACME-314159'), 'not a secret under the built-in rules');
  const same = await buildDataset({ ...base, tokenizerJson: first.tokenizerJson }, quiet);
  assert.equal(same.stats.filesRead, 0, 'same rules: the cache is used');

  const withPattern = await buildDataset({ ...base, tokenizerJson: first.tokenizerJson, extraSecretPatterns: ['ACME-[0-9]{6}'] }, quiet);
  assert.equal(withPattern.stats.filesRead, 31, 'new rules: every file is read and redacted again');
  assert.equal(withPattern.stats.filesReused, 0);
  assert.ok(!decoded(withPattern).includes('ACME-314159'), 'the new pattern reached the tokens');
  assert.ok(decoded(withPattern).includes('<SECRET:custom>'));
  const again = await buildDataset({ ...base, tokenizerJson: first.tokenizerJson, extraSecretPatterns: ['ACME-[0-9]{6}'] }, quiet);
  assert.equal(again.stats.filesRead, 0, 'and the cache is keyed by them from then on');
});

test('a kill between the cache\'s two renames (a new files.bin, the old files.json) is detected: the files are read again, never misread', async () => {
  const dir = fixture();
  const cacheDir = join(dir, '..', `${dir.split('/').pop()}-data`);
  const base: BuildInput = { folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: null, cacheDir };
  const first = await buildDataset(base, quiet);
  const index = readFileSync(join(cacheDir, 'files.json'));
  // Another build writes its files.bin; the kill comes before its files.json: the old index stays.
  writeFileSync(join(dir, 'mod0.ts'), 'export const other = 1;\n'.repeat(50));
  utimesSync(join(dir, 'mod0.ts'), new Date(), new Date(Date.now() + 5000));
  await buildDataset({ ...base, tokenizerJson: first.tokenizerJson }, quiet);
  writeFileSync(join(cacheDir, 'files.json'), index);
  const after = await buildDataset({ ...base, tokenizerJson: first.tokenizerJson }, quiet);
  assert.equal(after.stats.filesReused, 0, 'the index does not vouch for this files.bin');
  const full = await buildDataset({ folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: first.tokenizerJson }, quiet);
  assert.deepEqual(after.train, full.train);
});

test('when most of the code changed, a reused tokenizer is retrained (if allowed)', async () => {
  const dir = fixture();
  const cacheDir = join(dir, '..', `${dir.split('/').pop()}-data`);
  const first = await buildDataset({ folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: null, cacheDir }, quiet);
  for (let i = 0; i < 20; i++) {
    writeFileSync(join(dir, `mod${i}.ts`), `int main_${i}(void) {\n\tprintf("%d\\n", ${i});\n\treturn 0;\n}\n`.repeat(25));
    utimesSync(join(dir, `mod${i}.ts`), new Date(), new Date(Date.now() + 5000));
  }
  const warnings: string[] = [];
  const drifted = await buildDataset({ folders: [dir], excludeDirs: [], vocabSize: 400, tokenizerJson: first.tokenizerJson, cacheDir, retrainTokenizerOnDrift: true }, (e) => {
    if (e.event === 'warning') warnings.push(e.message);
  });
  assert.equal(drifted.stats.tokenizerTrained, true);
  assert.ok(warnings.some((w) => /changed: training a new tokenizer/.test(w)), warnings.join('; '));
  assert.equal(drifted.stats.filesRead, 30 + 20, 'first the changed files, then all of them for the new tokenizer');
});

test('workspace-lm train --retrain starts a new run from the previous weights, re-encoding only what changed', () => {
  const dir = fixture();
  const out = join(dir, '..', `${dir.split('/').pop()}-run`);
  const cli = join(__dirname, '..', 'dist', 'cli.js');
  const run = (args: string[]) => spawnSync(process.execPath, [cli, 'train', dir, '--preset', 'tiny', '--out', out, '--json', ...args], { encoding: 'utf8' });
  const first = run(['--max-steps', '80']);
  assert.equal(first.status, 0, first.stderr);
  const firstLoss = JSON.parse(first.stdout.split('\n').find((l) => l.includes('"event":"step"'))!).loss as number;
  writeFileSync(join(dir, 'mod5.ts'), 'export function f5(x: number): number {\n  return x * 5 + 1;\n}\n'.repeat(20));
  utimesSync(join(dir, 'mod5.ts'), new Date(), new Date(Date.now() + 5000));
  const second = run(['--max-steps', '20', '--retrain']);
  assert.equal(second.status, 0, second.stderr);
  const events = second.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const note = events.find((e) => e.event === 'warning' && /retraining from the previous model/.test(String(e.message)));
  assert.ok(note, 'says it retrains from the previous model');
  assert.match(String(note!.message), /1 files re-encoded, 29 unchanged/);
  const retrainLoss = events.find((e) => e.event === 'step')!.loss as number;
  assert.ok(retrainLoss < firstLoss - 1, `the new run starts from the trained weights (first loss ${retrainLoss} vs ${firstLoss} from scratch)`);
  assert.equal(events.find((e) => e.event === 'model')!.resumed_from_step, 0, 'a new run with its own schedule');
});
