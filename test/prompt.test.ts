// The prompt's tail (src/completion/prompt.ts): stable while typing, and never (nearly) empty —
// an alignment step larger than a small model's window once left the model nothing to read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stableTailStart } from '../src/completion/prompt';
import { SERVING } from '../src/ml/config';

test('the tail starts at a line start or an aligned offset, holds at least a quarter of the window, and only moves in alignment steps', () => {
  const line = 'const x = compute(a, b) + 1;\n';
  for (const maxChars of [300, 768, 1536, 4096]) {
    let last = -1;
    let moves = 0;
    let text = '';
    while (text.length < 3 * maxChars + 3 * SERVING.tailAlign) {
      text += line[text.length % line.length];
      const start = stableTailStart(text, maxChars);
      assert.ok(start === 0 || text[start - 1] === '\n' || start % SERVING.tailAlign === 0, `${maxChars}: start ${start}`);
      if (text.length > maxChars / 4) assert.ok(text.length - start >= maxChars / 4, `${maxChars} at ${text.length}: tail of ${text.length - start}`);
      assert.ok(text.length - start <= maxChars + SERVING.tailAlign + line.length, `${maxChars}: tail of ${text.length - start} is too long`);
      if (start !== last) moves++;
      last = start;
    }
    // Typing a few thousand characters moves the start a handful of times, not at every keystroke.
    assert.ok(moves <= 2 + 2 * Math.ceil(text.length / SERVING.tailAlign), `${maxChars}: ${moves} moves`);
  }
  // One long line (no newline to align to): an aligned offset, still a quarter of the window.
  const long = 'x'.repeat(5000);
  const s = stableTailStart(long, 768);
  assert.equal(s % SERVING.tailAlign, 0);
  assert.ok(long.length - s >= 768 / 4);
});
