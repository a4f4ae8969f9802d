/**
 * BPE benchmark: trains a 10,000-token vocabulary on a folder of source files and
 * times training and encoding.
 *
 *   node --import tsx scripts/bench-bpe.ts [folder] [--vocab N] [--mb N]
 *
 * Default folder: TS/JS/C sources under node_modules of this project, up to ~5 MB.
 * Minified files (any line longer than 1,000 characters) are skipped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BpeTokenizer } from '../src/ml/bpe';

const SOURCE_EXTENSIONS = new Set(['.ts', '.js', '.mjs', '.cjs', '.c', '.h', '.cc', '.cpp', '.py', '.rs', '.go', '.java']);
const MAX_LINE_LENGTH = 1000;

function parseArgs(argv: string[]): { folder: string; vocabSize: number; maxBytes: number } {
  let folder = path.join(__dirname, '..', 'node_modules');
  let vocabSize = 10_000;
  let maxMegabytes = 5;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--vocab') vocabSize = Number(argv[++i]);
    else if (argv[i] === '--mb') maxMegabytes = Number(argv[++i]);
    else folder = argv[i];
  }
  return { folder, vocabSize, maxBytes: Math.round(maxMegabytes * 1024 * 1024) };
}

function isMinified(bytes: Uint8Array): boolean {
  let lineStart = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (i - lineStart > MAX_LINE_LENGTH) return true;
      lineStart = i + 1;
    }
  }
  return false;
}

/** Source files in a stable (sorted, depth-first) order until maxBytes is reached. */
function collectSources(folder: string, maxBytes: number): Uint8Array[] {
  const docs: Uint8Array[] = [];
  let total = 0;
  const visit = (dir: string): void => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (total >= maxBytes) return;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== '.git') visit(full);
      } else if (entry.isFile() && SOURCE_EXTENSIONS.has(path.extname(entry.name)) && !entry.name.includes('.min.')) {
        const bytes = new Uint8Array(fs.readFileSync(full));
        if (bytes.length === 0 || isMinified(bytes)) continue;
        docs.push(bytes);
        total += bytes.length;
      }
    }
  };
  visit(folder);
  return docs;
}

function main(): void {
  const { folder, vocabSize, maxBytes } = parseArgs(process.argv.slice(2));
  const docs = collectSources(folder, maxBytes);
  const corpusBytes = docs.reduce((sum, doc) => sum + doc.length, 0);

  const trainStart = performance.now();
  const tokenizer = BpeTokenizer.train(docs, { vocabSize });
  const trainSeconds = (performance.now() - trainStart) / 1000;

  const encodeStart = performance.now();
  let tokens = 0;
  for (const doc of docs) tokens += tokenizer.encodeBytes(doc).length;
  const encodeSeconds = (performance.now() - encodeStart) / 1000;

  // Sanity check on a sample: decoding gives back the exact bytes.
  for (const doc of docs.slice(0, 50)) {
    const back = tokenizer.decodeBytes(tokenizer.encodeBytes(doc));
    if (back.length !== doc.length || back.some((byte, i) => byte !== doc[i])) throw new Error('round trip failed');
  }

  const rows: Array<[string, string]> = [
    ['folder', folder],
    ['files', String(docs.length)],
    ['corpus bytes', corpusBytes.toLocaleString('en-US')],
    ['vocab size (asked / got)', `${vocabSize} / ${tokenizer.vocabSize}`],
    ['train seconds', trainSeconds.toFixed(2)],
    ['encode seconds', encodeSeconds.toFixed(2)],
    ['tokens', tokens.toLocaleString('en-US')],
    ['bytes / token', (corpusBytes / tokens).toFixed(2)],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
}

main();
