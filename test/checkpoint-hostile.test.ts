// Model and run folders are data, never a weapon: a config.json that sizes a billion objects, a
// model.safetensors that is a FIFO or a link to /dev/zero, a tokenizer.json with a million ids,
// a damaged checkpoint that would push good ones out — each is a one-line error naming the file
// (or, for pruning, a folder moved aside), never a hang, a crash or an unbounded allocation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, symlinkSync, rmSync, existsSync, readdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHfConfig, MODEL_LIMITS, PRESETS, validateModelConfig } from '../src/ml/config';

const tmp = (prefix: string): string => mkdtempSync(join(tmpdir(), `wlm-hostile-${prefix}-`));

test('config.json: every dimension is bounded, so no config can size an allocation the process cannot survive', () => {
  const base = { model_type: 'gpt2', vocab_size: 1024, n_positions: 64, n_ctx: 64, n_embd: 64, n_layer: 2, n_head: 4 };
  assert.deepEqual(fromHfConfig(base), { vocabSize: 1024, contextLength: 64, dModel: 64, nLayer: 2, nHead: 4 });
  for (const p of Object.values(PRESETS)) validateModelConfig(p.model);
  // GPT-2 large loads (the bounds are not tight for real models).
  fromHfConfig({ ...base, vocab_size: 50257, n_positions: 1024, n_embd: 1280, n_layer: 36, n_head: 20 });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ n_layer: 1e8 }, /config\.json: n_layer 100000000 exceeds 64/],
    [{ n_embd: 1 << 20, n_head: 1 }, /config\.json: n_embd 1048576 exceeds 4096/],
    [{ vocab_size: 70_000 }, /config\.json: vocab_size 70000 exceeds 65536 \(token ids are uint16/],
    [{ n_positions: 1e6 }, /config\.json: n_positions 1000000 exceeds 8192/],
    [{ n_head: 128, n_embd: 128 }, /config\.json: n_head 128 exceeds 64/],
    [{ n_head: 3 }, /config\.json: n_embd 64 is not divisible by n_head 3/],
    [{ n_layer: 1.5 }, /config\.json: n_layer must be a positive integer/],
    [{ n_layer: -1 }, /config\.json: n_layer must be a positive integer/],
    [{ vocab_size: Number.MAX_VALUE }, /config\.json: vocab_size .* exceeds 65536/],
    [{ n_positions: 8192, n_head: 64, n_embd: 64 }, /attention scratch and KV cache per sequence, more than/],
    [{ model_type: 'llama\n<secret>'.repeat(20) }, /^config\.json: model_type "llama\?<secret>.{0,40}" is not supported/],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => fromHfConfig({ ...base, ...patch }), (e: Error) => message.test(e.message) && !e.message.includes('\n'), JSON.stringify(patch).slice(0, 80));
  }
  assert.ok(MODEL_LIMITS.vocabSize === 65_536);
});
