/**
 * Secret-redaction benchmark on hostile input: the inputs of test/corpus.test.ts and
 * test/secrets.test.ts that would make a backtracking pattern blow up (a 10 MB single line of rule keywords, a million a's, repeated and
 * unterminated prefixes). The test checks what redaction gives on them; this times it, at the
 * test's size and at twice that: linear work takes twice as long (growth 2), quadratic 4.
 *
 *   node --import tsx scripts/bench-secrets.ts
 *
 * Last line: the worst growth (the figure that matters) and the slowest rate. False positives on
 * real code: scripts/secrets-false-positives.ts.
 */
import { redactSecrets } from '../src/corpus/secrets';
import { Rng } from '../src/ml/rng';

const MB = 1_000_000;

function randomBase64(rng: Rng, n: number): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let s = '';
  for (let i = 0; i < n; i++) s += abc[rng.nextU32() & 63];
  return s;
}

/** The tests' inputs, `scale` times as long. */
function hostileInputs(scale: number): Record<string, string> {
  const rng = new Rng(3);
  const words = ['const', 'token', '=', '"', 'key', ':', 'password', 'https://', 'a@b', 'sk-', 'AKIA', 'eyJ', '-----BEGIN', 'Bearer', '0x1f', '\\'];
  let line = '';
  while (line.length < 10 * MB * scale) line += words[rng.nextU32() % words.length]! + ' ';
  return {
    '10 MB single line': line,
    'a x 1e6': 'a'.repeat(MB * scale),
    'password=" x 1e5': 'password="'.repeat(100_000 * scale),
    'key= x 1e5': 'key='.repeat(100_000 * scale),
    'apiKey: + 1e6 alnum': `apiKey: ${'aB3'.repeat(333_334 * scale)}`,
    'unterminated PEM + 1e6 base64': `-----BEGIN RSA PRIVATE KEY-----\n${'Ab3+'.repeat(250_000 * scale)}`,
    'url without @': `http://user:${'p'.repeat(MB * scale)}`,
    'sk- x 3e5': 'sk-'.repeat(300_000 * scale),
    // test/secrets.test.ts: the round-2 rules (key blocks, unquoted passwords, curl, URLs, the
    // entropy pass, values past the bound).
    'BEGIN + "# " x 1e5': `-----BEGIN PRIVATE KEY-----\n${'# '.repeat(100_000 * scale)}`,
    'BEGIN x 3e4 and one END': `${'-----BEGIN PRIVATE KEY-----\n'.repeat(30_000 * scale)}-----END PRIVATE KEY-----`,
    'curl -u x 1e5': 'curl -u '.repeat(100_000 * scale),
    'redis://: x 1e5': 'redis://:'.repeat(100_000 * scale),
    '"password: " lines x 1e5': 'password: \n'.repeat(100_000 * scale),
    'Password= x 1e5': 'Password='.repeat(100_000 * scale),
    'JQQJ x 2e5': 'JQQJ'.repeat(200_000 * scale),
    'quote + aB3 x 3e5': `"${'aB3'.repeat(300_000 * scale)}`,
    'sentry= x 1e5': 'sentry='.repeat(100_000 * scale),
    'client-key-data + 1 MB base64': `client-key-data: ${randomBase64(rng, MB * scale)}\n`,
    'apiKey = "1 MB"': `apiKey = "${randomBase64(rng, MB * scale)}"`,
    'token= x 1e5 then 1 MB': `${'token='.repeat(100_000 * scale)}${randomBase64(rng, MB * scale)}`,
  };
}

/** Best of 3 wall times of redacting `text`, in ms, and its redaction count. */
function time(text: string): { ms: number; redactions: number } {
  let ms = Infinity;
  let redactions = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    redactions = Object.values(redactSecrets(text).counts).reduce((s, n) => s + n, 0);
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, redactions };
}

function main(): void {
  const one = hostileInputs(1);
  const two = hostileInputs(2);
  const rows = Object.keys(one).map((name) => {
    const a = time(one[name]!), b = time(two[name]!);
    return { name, mb: one[name]!.length / MB, ms: a.ms, ms2: b.ms, redactions: a.redactions };
  });
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'input (test size)'.padEnd(w)}  ${'MB'.padStart(5)}  ${'ms'.padStart(7)}  ${'MB/s'.padStart(7)}  ${'ms at 2x'.padStart(9)}  ${'growth'.padStart(6)}  redactions`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${r.mb.toFixed(1).padStart(5)}  ${r.ms.toFixed(1).padStart(7)}  ${(r.mb / (r.ms / 1000)).toFixed(1).padStart(7)}  ${r.ms2.toFixed(1).padStart(9)}  ${(r.ms2 / r.ms).toFixed(2).padStart(6)}  ${r.redactions}`);
  }
  const worst = rows.reduce((a, b) => (b.ms2 / b.ms > a.ms2 / a.ms ? b : a));
  const slowest = rows.reduce((a, b) => (b.mb / b.ms < a.mb / a.ms ? b : a));
  console.log(`worst growth at 2x the input: ${(worst.ms2 / worst.ms).toFixed(2)} ("${worst.name}"; linear = 2); slowest ${(slowest.mb / (slowest.ms / 1000)).toFixed(1)} MB/s ("${slowest.name}")`);
}

main();
