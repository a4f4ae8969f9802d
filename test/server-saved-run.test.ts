// What the language server's training service shows for a run it did not train in this session:
// the saved chart and figures, nothing for a workspace never trained, and a reported error (log
// and status) for a trainer state it cannot read, instead of silently showing "not trained yet".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingStatus } from '../src/shared/protocol';
import { TrainingService } from '../src/server/trainingService';

function service(): { svc: TrainingService; published: TrainingStatus[]; logged: string[] } {
  const published: TrainingStatus[] = [];
  const logged: string[] = [];
  return { svc: new TrainingService((s) => published.push(s), (m) => logged.push(m)), published, logged };
}

const tmp = mkdtempSync(join(tmpdir(), 'wlm-saved-run-'));

test('no run yet: idle, nothing logged', async () => {
  const { svc, published, logged } = service();
  const snap = await svc.snapshot(join(tmp, 'never-trained'));
  assert.equal(snap.status.state, 'idle');
  assert.deepEqual([snap.history, snap.evals], [[], []]);
  assert.deepEqual([published, logged], [[], []]);
});

test('a saved run: its chart and its last figures', async () => {
  const dir = join(tmp, 'trained');
  mkdirSync(dir);
  writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({
    step: 20, totalSteps: 20, lastLoss: 2.5, lastValLoss: 2.75,
    history: [{ step: 10, loss: 4 }, { step: 20, loss: 2.5 }], evals: [{ step: 20, valLoss: 2.75 }],
  }));
  const { svc, logged } = service();
  const snap = await svc.snapshot(dir);
  assert.equal(snap.status.state, 'ready');
  assert.equal(snap.status.valLoss, 2.75);
  assert.deepEqual(snap.history, [{ step: 10, loss: 4 }, { step: 20, loss: 2.5 }]);
  assert.deepEqual(snap.evals, [{ step: 20, valLoss: 2.75 }]);
  assert.deepEqual(logged, []);
});

test('an unreadable trainer state is reported: logged, and an error status is published', async () => {
  const dir = join(tmp, 'damaged');
  mkdirSync(dir);
  writeFileSync(join(dir, 'trainer_state.json'), '{"step": 20, "hist');
  const { svc, published, logged } = service();
  const snap = await svc.snapshot(dir);
  assert.equal(snap.status.state, 'error');
  assert.match(snap.status.message, /could not read the saved training state .*trainer_state\.json/);
  assert.equal(logged.length, 1);
  assert.equal(logged[0], snap.status.message);
  assert.deepEqual(published.map((s) => s.state), ['error']);
});
