// Requests an attacker (or a minified bundle) can send: work per request is bounded by what is
// read around the cursor, never by the length of the line or the document; and two documents'
// requests never interleave on the served model's sessions. (No time is asserted: before the fix
// a 1 MB line took minutes, which the test timeouts turn into failures.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BpeTokenizer } from '../src/ml/bpe';
import { DEFAULT_COMPLETION_SETTINGS, SERVING } from '../src/ml/config';
import { ServedModel, WindowSession } from '../src/ml/servedModel';
import { CompletionEngine, CompletionModel } from '../src/completion/engine';
import { cursorLine } from '../src/completion/cursorLine';
import { fitToLine, trimAgainstSuffix } from '../src/completion/stopRules';

const MB = 1_000_000;

test('the cursor line is read within a window on each side, whatever its length', { timeout: 60_000 }, () => {
  const W = SERVING.lineContextChars;
  for (const line of [' '.repeat(MB), 'a'.repeat(MB) + '!', 'x = 1; '.repeat(MB / 7)]) {
    for (const at of [0, line.length >> 1, line.length]) {
      const c = cursorLine(line, at);
      assert.ok(c.restOfLine.length <= W && c.wordBefore.length <= W && c.cursorIndent.length <= W);
      assert.equal(c.restTruncated, line.length - at > W);
      assert.equal(c.restOfLine, line.slice(at, at + W));
    }
  }
  // A normal line: exact.
  const text = 'first\n    return foo_bar$1(x, y)\nlast';
  const at = text.indexOf('(');
  assert.deepEqual(cursorLine(text, at), { restOfLine: '(x, y)', restTruncated: false, cursorIndent: '    ', atLineStart: false, wordBefore: 'foo_bar$1' });
  assert.equal(cursorLine('\t  \n', 3).atLineStart, true);
  // The line starts beyond the window: its indentation is unknown, not guessed from the middle.
  const long = '  ' + ' '.repeat(2 * W) + 'x';
  assert.deepEqual({ ...cursorLine(long, long.length), restOfLine: '' }, { restOfLine: '', restTruncated: false, cursorIndent: '', atLineStart: false, wordBefore: 'x' });
});

test('fitting a suggestion to a 1 MB rest of the line is linear (no /\\s+$/ on it)', { timeout: 60_000 }, () => {
  const blanks = ' '.repeat(MB);
  assert.deepEqual(fitToLine('foo();', blanks), { text: 'foo();', replaceChars: 0 });
  assert.equal(trimAgainstSuffix('a)', ')' + blanks), 'a');
  const spacedOut = ' '.repeat(MB) + 'x';
  assert.deepEqual(fitToLine('foo', spacedOut), { text: 'foo', replaceChars: 0 });
  // A cut rest of the line is never "a few auto-closed characters" to replace.
  assert.deepEqual(fitToLine('a")', '")', true), { text: 'a', replaceChars: 0 }, 'inserted, minus what the line already has');
  assert.deepEqual(fitToLine('a")', '")'), { text: 'a")', replaceChars: 2 });
});

/** A tokenizer, and a stand-in GPT whose next token depends on its whole window (so interleaved decodes would show). */
function standIn(): { tok: BpeTokenizer; model: CompletionModel; calls: () => number } {
  const tok = BpeTokenizer.train([new TextEncoder().encode('alpha beta gamma delta epsilon zeta eta theta\n'.repeat(50))], { vocabSize: 300 });
  const V = tok.vocabSize;
  const ok = Array.from({ length: V }, (_, id) => id).filter((id) => !tok.isSpecialId(id) && !new TextDecoder().decode(tok.tokenBytes(id)).includes('\n'));
  let window: number[] = [];
  let calls = 0;
  const logits = (): Float32Array => {
    calls++;
    let h = window.length;
    for (const id of window) h = (h * 31 + id) % 1_000_003;
    const pick = ok[h % ok.length]!;
    return Float32Array.from({ length: V }, (_, v) => (v === pick ? 30 : 0));
  };
  const gpt: WindowSession = {
    commonPrefix: (ids) => { let n = 0; while (n < window.length && n < ids.length && window[n] === ids[n]) n++; return n; },
    prime: (ids) => { window = Array.from(ids); return logits(); },
    append: (id) => { window.push(id); return logits(); },
  };
  const served = new ServedModel({ gpt, ngram: null, copy: null, weights: null, vocabSize: V }, { mode: 'gpt' });
  return { tok, model: { step: 1, contextLength: 64, tokenizer: tok, decoder: () => served }, calls: () => calls };
}

const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, maxTokens: 24, minMeanLogProb: -Infinity };
const opts = { useCache: false, reuseSuggestions: false };

test('a 1 MB single-line document is answered, at its start, middle and end, and the next request is served', { timeout: 120_000 }, async () => {
  const { model } = standIn();
  const engine = new CompletionEngine(() => model, settings, opts);
  for (const line of [' '.repeat(MB - 10), 'a'.repeat(MB - 10) + '!']) {
    for (const at of [0, line.length >> 1, line.length]) {
      const r = await engine.complete({ uri: 'file:///big.js', text: line, offset: at }, () => false);
      assert.ok(['ok', 'empty'].includes(r.reason), r.reason);
    }
  }
  const next = await engine.complete({ uri: 'file:///small.js', text: 'alpha beta ', offset: 11 }, () => false);
  assert.equal(next.reason, 'ok');
});

test('two documents completed at once give what each gives alone: decodes never interleave on the served model', async () => {
  const docs = ['alpha beta gamma delta ', 'theta eta zeta epsilon alpha ', 'gamma gamma beta '];
  const alone: string[] = [];
  for (const text of docs) {
    const { model } = standIn();
    alone.push((await new CompletionEngine(() => model, settings, opts).complete({ uri: `file:///${text.length}.txt`, text, offset: text.length }, () => false)).text);
  }
  assert.ok(alone.every((t) => t.length > 0));
  const { model } = standIn();
  const shared = new CompletionEngine(() => model, settings, opts);
  const together = await Promise.all(docs.map((text) => shared.complete({ uri: `file:///${text.length}.txt`, text, offset: text.length }, () => false)));
  assert.deepEqual(together.map((r) => r.text), alone);
  // A request cancelled while it waits for its turn does no work.
  const { model: m2, calls } = standIn();
  const e2 = new CompletionEngine(() => m2, settings, opts);
  let cancel = false;
  const first = e2.complete({ uri: 'file:///a', text: docs[0]!, offset: docs[0]!.length }, () => false);
  const second = e2.complete({ uri: 'file:///b', text: docs[1]!, offset: docs[1]!.length }, () => cancel);
  cancel = true;
  await first;
  const before = calls();
  assert.equal((await second).reason, 'cancelled');
  assert.equal(calls(), before, 'the cancelled request never reached the model');
});
