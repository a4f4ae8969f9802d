// The status bar's text, tooltip and look for each state (src/extension/statusText.ts). The e2e
// tests wait for some of these texts; here every state is covered without an editor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelStatusParams, TrainingStatus } from '../src/shared/protocol';
import { describeStatus, StatusState } from '../src/extension/statusText';

const idle: TrainingStatus = { state: 'idle', message: 'not trained yet' };
const readyModel: ModelStatusParams = { state: 'ready', message: 'serving /ws/run mixed with its n-gram model', model: { dir: '/ws/run', step: 1200, valLoss: 1.2345, params: 1_000_000 } };

function describe(training: TrainingStatus, over: Partial<StatusState> = {}): ReturnType<typeof describeStatus> {
  return describeStatus({ trusted: true, training, model: null, completionsEnabled: true, ...over });
}

test('untrusted: restricted, whatever else is known', () => {
  const d = describe({ state: 'training', message: 'training', step: 3, totalSteps: 9 }, { trusted: false, model: readyModel });
  assert.equal(d.text, '$(shield) Workspace LM: restricted');
  assert.match(d.tooltip, /Restricted Mode/);
  assert.deepEqual([d.error, d.warning], [false, false]);
});

test('preparing: the phase and its percentage', () => {
  const d = describe({ state: 'preparing', message: 'tokenizer 42%', phase: 'tokenizer', phaseFraction: 0.416 });
  assert.equal(d.text, '$(sync~spin) tokenizer 42%');
  assert.equal(d.tooltip, 'Workspace LM: tokenizer 42%');
  assert.equal(describe({ state: 'preparing', message: 'indexing the workspace' }).text, '$(sync~spin) preparing 0%');
});

test('training: step, loss and ETA; the tooltip has the figures', () => {
  const d = describe({ state: 'training', message: 'training', step: 120, totalSteps: 400, loss: 3.14159, valLoss: 3.5, tokensPerSec: 10_234.4, elapsedSec: 75, etaSec: 3725 });
  assert.equal(d.text, '$(pulse) step 120/400 · loss 3.14 · ETA 1:02:05');
  assert.equal(d.tooltip, 'Workspace LM is training\nstep 120/400\nloss 3.1416, val loss 3.5000\n10234 tokens/s, elapsed 1:15, ETA 1:02:05\nClick to show the training view.');
  assert.deepEqual([d.error, d.warning], [false, false]);
});

test('training before the first step: no loss, unknown total and ETA', () => {
  const d = describe({ state: 'training', message: 'training' });
  assert.equal(d.text, '$(pulse) step 0/? · ETA --:--');
  assert.match(d.tooltip, /^Workspace LM is training\nstep 0\/\?\nloss -, val loss -\n0 tokens\/s, elapsed --:--, ETA --:--/);
});

test('paused and stopping', () => {
  const p = describe({ state: 'paused', message: 'paused at step 77', step: 77, totalSteps: 400 });
  assert.equal(p.text, '$(debug-pause) paused at step 77/400');
  assert.match(p.tooltip, /paused/);
  const s = describe({ state: 'stopping', message: 'saving a checkpoint and stopping', step: 80 });
  assert.equal(s.text, '$(sync~spin) stopping…');
  assert.equal(s.tooltip, 'saving a checkpoint and stopping');
});

test('a training error is shown as an error, with its message', () => {
  const d = describe({ state: 'error', message: 'out of memory' }, { model: readyModel });
  assert.equal(d.text, '$(error) Workspace LM');
  assert.match(d.tooltip, /out of memory/);
  assert.deepEqual([d.error, d.warning], [true, false]);
});

test('idle or ready: the served model and its val loss, or none yet', () => {
  for (const training of [idle, { state: 'ready', message: 'done at step 1200' } as TrainingStatus]) {
    const d = describe(training, { model: readyModel });
    assert.equal(d.text, '$(check) Workspace LM · val 1.23');
    assert.equal(d.tooltip, 'Workspace LM: model ready (step 1200)\nserving /ws/run mixed with its n-gram model');
    assert.deepEqual([d.error, d.warning], [false, false]);
  }
  const imported = describe(idle, { model: { ...readyModel, model: { ...readyModel.model!, step: null, valLoss: null } } });
  assert.equal(imported.text, '$(check) Workspace LM');
  assert.match(imported.tooltip, /model ready \(step \?\)/);
  for (const model of [null, { state: 'no-model', message: 'no trained model yet' } as ModelStatusParams, { state: 'loading', message: 'loading' } as ModelStatusParams]) {
    const d = describe(idle, { model });
    assert.equal(d.text, '$(circuit-board) Workspace LM');
    assert.match(d.tooltip, /no model yet/);
  }
});

test('a model that failed to load is a warning, not an error', () => {
  const d = describe(idle, { model: { state: 'error', message: 'could not load /ws/run: bad header' } });
  assert.equal(d.text, '$(warning) Workspace LM');
  assert.equal(d.tooltip, 'could not load /ws/run: bad header');
  assert.deepEqual([d.error, d.warning], [false, true]);
});

test('completions turned off are said where the model is shown', () => {
  assert.equal(describe(idle, { model: readyModel, completionsEnabled: false }).text, '$(check) Workspace LM · val 1.23 (completions off)');
  assert.match(describe(idle, { model: readyModel, completionsEnabled: false }).tooltip, /\(completions off\)/);
  assert.equal(describe(idle, { completionsEnabled: false }).text, '$(circuit-board) Workspace LM (completions off)');
});
