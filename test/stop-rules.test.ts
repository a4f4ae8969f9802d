import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStop, fitToLine, trimAgainstSuffix } from '../src/completion/stopRules';

test('line mode stops at the first newline and drops it', () => {
  const ctx = { mode: 'line' as const, cursorIndent: '  ', atLineStart: false };
  assert.deepEqual(checkStop('foo(bar', ctx), { stop: false, keep: 'foo(bar' });
  assert.deepEqual(checkStop('foo(bar);\n  baz', ctx), { stop: true, keep: 'foo(bar);' });
  assert.deepEqual(checkStop('\nnext', ctx), { stop: true, keep: '' });
});

test('block mode: a dedent below the cursor ends the block; a closer at its level is kept', () => {
  const inBody = { mode: 'block' as const, cursorIndent: '    ', atLineStart: true };
  const code = 'if (x) {\n        y();\n    }\n    z();\n';
  assert.deepEqual(checkStop(code, inBody), { stop: true, keep: 'if (x) {\n        y();\n    }' });
  const dedent = 'return a;\n}\n';
  assert.deepEqual(checkStop(dedent, inBody), { stop: true, keep: 'return a;' });
  // Still going: the last line is incomplete.
  assert.deepEqual(checkStop('if (x) {\n        y(', inBody), { stop: false, keep: 'if (x) {\n        y(' });
});

test('block mode: a blank line after a complete statement ends it; mid-line start ends at the same level', () => {
  const ctx = { mode: 'block' as const, cursorIndent: '', atLineStart: true };
  assert.deepEqual(checkStop('a = 1;\nb = 2;\n\nc = 3;', ctx), { stop: true, keep: 'a = 1;\nb = 2;' });
  const mid = { mode: 'block' as const, cursorIndent: '  ', atLineStart: false };
  assert.deepEqual(checkStop('(a, b);\n  next();\n', mid), { stop: true, keep: '(a, b);' });
});

test('trimAgainstSuffix removes what the rest of the line already has', () => {
  assert.equal(trimAgainstSuffix('a, b)', ')'), 'a, b');
  assert.equal(trimAgainstSuffix('a, b);', ');'), 'a, b');
  assert.equal(trimAgainstSuffix(')', ')'), '');
  assert.equal(trimAgainstSuffix('x + 1', ''), 'x + 1');
  assert.equal(trimAgainstSuffix('value', ' = 3;'), 'value');
  assert.equal(trimAgainstSuffix('foo', 'foobar'), '', 'only repeats what follows the cursor');
});

test('fitToLine replaces auto-closed brackets and quotes the suggestion already contains', () => {
  assert.deepEqual(fitToLine('lo, " + name + "!";', '"'), { text: 'lo, " + name + "!";', replaceChars: 1 });
  assert.deepEqual(fitToLine('a, b);', ')'), { text: 'a, b);', replaceChars: 1 });
  assert.deepEqual(fitToLine(')', ')'), { text: '', replaceChars: 0 }, 'adds nothing');
  // Not contained: inserted at the cursor, overlap trimmed.
  assert.deepEqual(fitToLine('value', ' = 3;'), { text: 'value', replaceChars: 0 });
  assert.deepEqual(fitToLine('x\n  y', ')'), { text: 'x\n  y', replaceChars: 0 }, 'multi-line suggestions are insertions');
});
