/**
 * Dataset-creation benchmark: index a folder (walk, filters, secret redaction), train the BPE
 * tokenizer and encode the corpus — the work a training run does before its first step. The
 * issue's budget is 5 s for a ~5 MB, ~500-file repository.
 *
 *   node --import tsx scripts/bench-index.ts [folder] [--vocab N] [--files N] [--mb N] [--ignored N]
 *
 * Without a folder, builds one in a temp dir: --files (default 500) TS/JS sources of 3–100 KB,
 * not minified, copied from this project's node_modules up to --mb (default 5) MB, plus --ignored (default
 * 10,000) files in a node_modules/ and a gitignored build/ folder, which must cost nothing since
 * skipped folders are never descended into.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BpeTokenizer } from '../src/ml/bpe';
import { encodeDocuments } from '../src/ml/dataset';
import { indexFolder } from '../src/corpus/corpus';

const SOURCE_EXTENSIONS = new Set(['.ts', '.js', '.mjs', '.cjs']);
/** Sizes kept: real modules, not one-line re-exports nor huge generated .d.ts files. */
const MIN_SOURCE_BYTES = 3_000;
const MAX_SOURCE_BYTES = 100_000;
const SKIPPED_NAMES = new Set(['node_modules', 'vendor', 'third_party', 'build', 'target', '__pycache__']);

function parseArgs(argv: string[]): { folder: string | null; vocabSize: number; files: number; maxBytes: number; ignored: number } {
  let folder: string | null = null;
  let files = 500;
  let vocabSize = 10_000;
  let megabytes = 5;
  let ignored = 10_000;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--vocab') vocabSize = Number(argv[++i]);
    else if (argv[i] === '--files') files = Number(argv[++i]);
    else if (argv[i] === '--mb') megabytes = Number(argv[++i]);
    else if (argv[i] === '--ignored') ignored = Number(argv[++i]);
    else folder = argv[i]!;
  }
  return { folder, vocabSize, files, maxBytes: Math.round(megabytes * 1024 * 1024), ignored };
}

/**
 * Copies up to `files` sources into `dest`: evenly spaced among the candidates (sorted by path), so
 * the sample spans many packages, and at most ~maxBytes. Paths keep their layout under src/.
 */
function copySources(from: string, dest: string, files: number, maxBytes: number): { files: number; bytes: number } {
  const candidates: string[] = [];
  const visit = (dir: string): void => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        visit(full);
      } else if (entry.isFile() && SOURCE_EXTENSIONS.has(path.extname(entry.name)) && !entry.name.includes('.min.')) {
        const size = fs.statSync(full).size;
        if (size >= MIN_SOURCE_BYTES && size <= MAX_SOURCE_BYTES) candidates.push(full);
      }
    }
  };
  visit(from);
  const stride = Math.max(1, candidates.length / files);
  let copied = 0;
  let bytes = 0;
  for (let k = 0; k * stride < candidates.length && bytes < maxBytes; k++) {
    const full = candidates[Math.floor(k * stride)]!;
    const data = fs.readFileSync(full);
    if (data.toString('latin1').split('\n').some((l) => l.length > 1000)) continue; // minified
    // The copy must not sit under a folder name the index skips (node_modules/<pkg>/vendor/…).
    const rel = path.relative(from, full).split(path.sep).map((seg) => (SKIPPED_NAMES.has(seg) || seg.startsWith('.') ? `_${seg}` : seg));
    const target = path.join(dest, 'src', ...rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, data);
    copied++;
    bytes += data.length;
  }
  return { files: copied, bytes };
}

/** `count` tiny files split between node_modules/ and a gitignored build/ folder. */
function addIgnoredTree(dest: string, count: number): void {
  fs.writeFileSync(path.join(dest, '.gitignore'), '/build/\n');
  for (let i = 0; i < count; i++) {
    const dir = path.join(dest, i % 2 === 0 ? 'node_modules' : 'build', `pkg${Math.floor(i / 200)}`);
    if (i % 200 < 2) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}.js`), 'module.exports = 1;\n');
  }
}

async function main(): Promise<void> {
  const { folder: given, vocabSize, files, maxBytes, ignored } = parseArgs(process.argv.slice(2));
  let folder = given;
  let tmp: string | null = null;
  if (folder === null) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wlm-bench-index-'));
    const t = performance.now();
    const copied = copySources(path.join(__dirname, '..', 'node_modules'), tmp, files, maxBytes);
    addIgnoredTree(tmp, ignored);
    console.log(`built ${tmp}: ${copied.files} sources, ${(copied.bytes / 1e6).toFixed(2)} MB, + ${ignored} ignored files (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    folder = tmp;
  }
  try {
    const t0 = performance.now();
    const corpus = await indexFolder(folder, { maxFileBytes: 1_000_000 });
    const t1 = performance.now();
    const tokenizer = BpeTokenizer.train(corpus.docs.map((d) => d.bytes), { vocabSize });
    const t2 = performance.now();
    const tokens = encodeDocuments(corpus.docs, (b) => tokenizer.encodeBytes(b), tokenizer.eotId);
    const t3 = performance.now();

    const skipped = Object.entries(corpus.summary.skipped).map(([k, v]) => `${k} ${v.files}f/${v.dirs}d`).join(', ');
    const secrets = Object.entries(corpus.summary.secrets).map(([k, n]) => `${k} ${n}`).join(', ');
    const rows: Array<[string, string]> = [
      ['folder', folder],
      ['files kept', String(corpus.summary.files)],
      ['bytes kept', corpus.summary.bytes.toLocaleString('en-US')],
      ['skipped', skipped || '-'],
      ['secrets redacted', secrets || '-'],
      ['vocab size (asked / got)', `${vocabSize} / ${tokenizer.vocabSize}`],
      ['tokens', tokens.length.toLocaleString('en-US')],
      ['index seconds', ((t1 - t0) / 1000).toFixed(2)],
      ['tokenizer seconds', ((t2 - t1) / 1000).toFixed(2)],
      ['encode seconds', ((t3 - t2) / 1000).toFixed(2)],
      ['total seconds', ((t3 - t0) / 1000).toFixed(2)],
    ];
    const width = Math.max(...rows.map(([name]) => name.length));
    for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
  } finally {
    if (tmp !== null) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
