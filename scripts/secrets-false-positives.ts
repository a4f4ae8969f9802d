/**
 * False positives of secret redaction on real code: runs redactSecrets over codebases that are
 * on this machine (the TypeScript compiler's sources, Python's standard library, Playwright's
 * library, this repository's src/) and reports the redactions per MB, by rule, with the lines
 * they hit. These codebases hold no live credentials, so every redaction is either a false
 * positive or a deliberate test fixture (test keys, documented example tokens): the figure to
 * keep near zero.
 *
 *   node --import tsx scripts/secrets-false-positives.ts [name=/path ...] [--show N]
 *
 * Files are chosen as the corpus chooses them (classifyContent: no binaries, minified or
 * generated files) but without the size cap, so typescript.js (9 MB) counts. Extra codebases can
 * be given as name=path (every text file under path with a source-code extension).
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { classifyContent } from '../src/corpus/corpus';
import { redactSecrets } from '../src/corpus/secrets';

const SOURCE_EXT = /\.(?:[cm]?[jt]sx?|py|pyi|rb|go|rs|java|kt|c|h|cc|cpp|hpp|cs|php|sh|ya?ml|toml|ini|cfg|json|md)$/;

interface Codebase { name: string; files: string[] }

function walk(dir: string, skipDir: (name: string) => boolean, out: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const abs = join(dir, e.name);
    if (e.isDirectory()) {
      if (!skipDir(e.name)) walk(abs, skipDir, out);
    } else if (e.isFile() && SOURCE_EXT.test(e.name)) out.push(abs);
  }
}

function defaultCodebases(): Codebase[] {
  const nm = join(__dirname, '..', 'node_modules');
  const out: Codebase[] = [];
  const ts = join(nm, 'typescript', 'lib', 'typescript.js');
  if (existsSync(ts)) out.push({ name: 'TypeScript compiler (typescript.js)', files: [ts] });
  const py = readdirSync('/usr/lib').filter((d) => /^python3\.\d+$/.test(d)).sort().pop();
  if (py !== undefined) {
    const files: string[] = [];
    walk(join('/usr/lib', py), (n) => n === 'site-packages' || n === 'dist-packages' || n === '__pycache__', files);
    out.push({ name: `Python ${py.slice(6)} standard library`, files: files.filter((f) => /\.py$/.test(f)) });
  }
  // Third-party Python that handles credentials (HTTP auth, OAuth, JWT, TLS, crypto), and
  // highlighters full of example strings.
  const dist = '/usr/lib/python3/dist-packages';
  const packages = ['requests', 'urllib3', 'oauthlib', 'jwt', 'OpenSSL', 'httplib2', 'cryptography', 'pygments', 'pip', 'setuptools'];
  const distFiles: string[] = [];
  for (const p of packages) if (existsSync(join(dist, p))) walk(join(dist, p), (n) => n === '__pycache__', distFiles);
  if (distFiles.length > 0) out.push({ name: `Python packages (${packages.filter((p) => existsSync(join(dist, p))).join(', ')})`, files: distFiles.filter((f) => /\.py$/.test(f)) });
  // npm packages' JavaScript (minified bundles are left out below, as the corpus does).
  const npmFiles: string[] = [];
  walk(nm, (n) => n === 'typescript' || n === '.bin', npmFiles);
  out.push({ name: 'node_modules JavaScript (not minified; without typescript)', files: npmFiles.filter((f) => /\.[cm]?js$/.test(f)) });
  const src: string[] = [];
  walk(join(__dirname, '..', 'src'), () => false, src);
  out.push({ name: 'workspace-lm src/', files: src });
  return out;
}

interface Hit { rule: string; file: string; line: number; text: string }

function measure(cb: Codebase): { bytes: number; files: number; hits: Hit[]; ms: number } {
  let bytes = 0;
  let files = 0;
  let ms = 0;
  const hits: Hit[] = [];
  for (const file of cb.files) {
    let buf: Buffer;
    try {
      if (statSync(file).size === 0) continue;
      buf = readFileSync(file);
    } catch {
      continue;
    }
    // As the corpus, but a long line alone (typescript.js has a 10 KB Unicode table) does not make
    // a file minified here: only the mean line length does.
    const kind = classifyContent(buf, file);
    if (kind !== 'text' && !(kind === 'minified' && !/\.min\.js$/.test(file) && buf.length / (buf.toString('latin1').split('\n').length) < 200)) continue;
    // Placeholders already in the file (docs about redaction) are not redactions: masked.
    const text = buf.toString('utf8').replaceAll('<SECRET:', '<SECRET_:');
    files++;
    bytes += buf.length;
    const t0 = performance.now();
    const r = redactSecrets(text);
    ms += performance.now() - t0;
    if (Object.keys(r.counts).length === 0) continue;
    // Where: the redacted lines (placeholders in the output), with their line numbers.
    const lines = r.text.split('\n');
    lines.forEach((l, i) => {
      const re = /<SECRET:([a-z0-9_]+)>/g;
      let m;
      while ((m = re.exec(l)) !== null) hits.push({ rule: m[1]!, file, line: i + 1, text: l.trim().slice(0, 140) });
    });
  }
  return { bytes, files, hits, ms };
}

function main(): void {
  const args = process.argv.slice(2);
  let show = 20;
  const extra: Codebase[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--show') show = Number(args[++i]);
    else if (a.includes('=')) {
      const [name, root] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
      const files: string[] = [];
      walk(root, (n) => n === 'node_modules' || n === '.git', files);
      extra.push({ name, files });
    }
  }
  const codebases = extra.length > 0 ? extra : defaultCodebases();
  const rows = codebases.map((cb) => ({ cb, ...measure(cb) }));
  console.log('| codebase | files | MB | redactions | per MB | MB/s | by rule |');
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const mb = r.bytes / 1e6;
    const byRule = new Map<string, number>();
    for (const h of r.hits) byRule.set(h.rule, (byRule.get(h.rule) ?? 0) + 1);
    const rules = [...byRule].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`| ${r.cb.name} | ${r.files} | ${mb.toFixed(1)} | ${r.hits.length} | ${(r.hits.length / mb).toFixed(2)} | ${(mb / (r.ms / 1000)).toFixed(1)} | ${rules || '-'} |`);
  }
  for (const r of rows) {
    if (r.hits.length === 0 || show === 0) continue;
    console.log(`\n${r.cb.name}: ${r.hits.length} redactions${r.hits.length > show ? ` (first ${show})` : ''}`);
    const common = r.cb.files.length > 1 ? commonDir(r.cb.files) : '';
    for (const h of r.hits.slice(0, show)) console.log(`  ${h.rule.padEnd(22)} ${relative(common, h.file) || h.file}:${h.line}  ${h.text}`);
  }
  const total = rows.reduce((s, r) => s + r.hits.length, 0);
  const totalMb = rows.reduce((s, r) => s + r.bytes, 0) / 1e6;
  console.log(`\ntotal: ${total} redactions in ${totalMb.toFixed(1)} MB of real code (${(total / totalMb).toFixed(2)} per MB)`);
}

function commonDir(files: string[]): string {
  let prefix = files[0]!;
  for (const f of files) while (!f.startsWith(prefix)) prefix = prefix.slice(0, prefix.lastIndexOf('/'));
  return prefix;
}

main();
