// The corpus: which files of a folder the model trains on. Walks the tree honouring .gitignore
// files at every level (with the `ignore` package: git's semantics incl. negations) and
// .git/info/exclude, skips what is never source (VCS and dependency folders, binaries, lockfiles,
// minified bundles, oversized files, symlinks) and records why each skipped file was skipped.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import ignore, { Ignore } from 'ignore';
import type { Document } from '../ml/dataset';

/** Directories that are never the user's own source. */
const SKIP_DIRS = new Set(['.git', '.hg', '.svn', 'node_modules', 'bower_components', '.workspace-lm', '__pycache__', '.venv', 'venv', '.tox', '.mypy_cache', '.pytest_cache', '.next', '.nuxt', '.cache', '.gradle', '.idea', '.vs', 'target', 'vendor', 'third_party', '.yarn', '.pnpm-store']);
/** Generated dependency manifests: large, repetitive, not code anyone writes. */
const LOCKFILES = new Set(['package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'Cargo.lock', 'poetry.lock', 'Pipfile.lock', 'composer.lock', 'Gemfile.lock', 'go.sum', 'npm-shrinkwrap.json', 'bun.lockb', 'flake.lock', 'packages.lock.json']);
/** Never train on these: secrets live there (.env) or they are binary formats by extension. */
const SKIP_FILE_PATTERNS = [/^\.env(\..*)?$/, /\.(pem|key|p12|pfx|keystore|jks)$/i];
const BINARY_EXT = /\.(png|jpe?g|gif|bmp|ico|webp|tiff?|psd|pdf|zip|gz|tgz|bz2|xz|7z|rar|jar|war|class|o|obj|a|lib|so|dylib|dll|exe|bin|dat|wasm|pyc|pyo|woff2?|ttf|otf|eot|mp3|mp4|wav|ogg|flac|avi|mov|mkv|sqlite|db|onnx|pt|safetensors|npy|npz|h5|parquet)$/i;

export type SkipReason = 'ignored' | 'vendored' | 'lockfile' | 'secret-file' | 'binary' | 'too-large' | 'minified' | 'symlink' | 'empty' | 'unreadable';

export interface SkipTally {
  files: number;
  bytes: number;
}

export interface CorpusSummary {
  files: number;
  bytes: number;
  skipped: Partial<Record<SkipReason, SkipTally>>;
}

export interface Corpus {
  root: string;
  docs: Document[];
  summary: CorpusSummary;
}

export interface IndexOptions {
  maxFileBytes: number;
  /** Extra directories (absolute) to leave out, e.g. the run's output directory. */
  excludeDirs?: string[];
  onProgress?: (filesSeen: number) => void;
}

/** Reads the folder's text files. Throws with a hint if the folder is missing or has no text. */
export async function indexFolder(root: string, opts: IndexOptions): Promise<Corpus> {
  const absRoot = path.resolve(root);
  let st;
  try {
    st = await fs.stat(absRoot);
  } catch {
    throw new Error(`folder not found: ${absRoot}`);
  }
  if (!st.isDirectory()) throw new Error(`not a folder: ${absRoot}`);
  const excluded = new Set((opts.excludeDirs ?? []).map((d) => path.resolve(d)));
  const docs: Document[] = [];
  const summary: CorpusSummary = { files: 0, bytes: 0, skipped: {} };
  const skip = (reason: SkipReason, bytes: number): void => {
    const t = (summary.skipped[reason] ??= { files: 0, bytes: 0 });
    t.files++;
    t.bytes += bytes;
  };
  let seen = 0;

  // Each entry: an ignore matcher and the directory its patterns are relative to.
  type Rules = { base: string; ig: Ignore }[];
  const rootRules: Rules = [];
  const infoExclude = await readText(path.join(absRoot, '.git', 'info', 'exclude'));
  if (infoExclude !== null) rootRules.push({ base: absRoot, ig: ignore().add(infoExclude) });

  const isIgnored = (rules: Rules, abs: string, isDir: boolean): boolean => {
    for (const { base, ig } of rules) {
      let rel = path.relative(base, abs).split(path.sep).join('/');
      if (rel === '' || rel.startsWith('..')) continue;
      if (isDir) rel += '/';
      if (ig.ignores(rel)) return true;
    }
    return false;
  };

  const walk = async (dir: string, inherited: Rules): Promise<void> => {
    const gitignore = await readText(path.join(dir, '.gitignore'));
    const rules = gitignore === null ? inherited : [...inherited, { base: dir, ig: ignore().add(gitignore) }];
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      skip('unreadable', 0);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      if (e.isSymbolicLink()) {
        // Not followed: symlinks can loop or point outside the workspace.
        skip('symlink', 0);
        continue;
      }
      if (e.isDirectory()) {
        if (SKIP_DIRS.has(e.name) || excluded.has(abs)) continue;
        if (isIgnored(rules, abs, true)) continue;
        await walk(abs, rules);
        continue;
      }
      if (!e.isFile()) continue;
      seen++;
      if (seen % 200 === 0) opts.onProgress?.(seen);
      let size = 0;
      try {
        size = (await fs.stat(abs)).size;
      } catch {
        skip('unreadable', 0);
        continue;
      }
      if (isIgnored(rules, abs, false)) { skip('ignored', size); continue; }
      if (LOCKFILES.has(e.name)) { skip('lockfile', size); continue; }
      if (SKIP_FILE_PATTERNS.some((re) => re.test(e.name))) { skip('secret-file', size); continue; }
      if (BINARY_EXT.test(e.name)) { skip('binary', size); continue; }
      if (size === 0) { skip('empty', 0); continue; }
      if (size > opts.maxFileBytes) { skip('too-large', size); continue; }
      let bytes: Uint8Array;
      try {
        bytes = await fs.readFile(abs);
      } catch {
        skip('unreadable', size);
        continue;
      }
      const kind = classifyContent(bytes, e.name);
      if (kind !== 'text') { skip(kind, size); continue; }
      docs.push({ path: path.relative(absRoot, abs).split(path.sep).join('/'), bytes });
      summary.files++;
      summary.bytes += size;
    }
  };
  await walk(absRoot, rootRules);
  opts.onProgress?.(seen);
  if (docs.length === 0) {
    const skipped = Object.values(summary.skipped).reduce((s, t) => s + t.files, 0);
    throw new Error(
      seen === 0
        ? `no files in ${absRoot}: point workspace-lm at a folder with source code`
        : `no text files to train on in ${absRoot} (${skipped} skipped as ignored, binary, generated or too large)`,
    );
  }
  return { root: absRoot, docs, summary };
}

/** Text, or the reason it is not trainable text. */
export function classifyContent(bytes: Uint8Array, name: string): 'text' | 'binary' | 'minified' {
  const head = bytes.subarray(0, 8192);
  // NUL bytes do not occur in text files of any encoding we train on.
  if (head.includes(0)) return 'binary';
  // Minified/generated: very long lines, or a source map / minified name.
  if (/\.min\.(js|css)$|\.map$|\.bundle\.js$/i.test(name)) return 'minified';
  let longest = 0;
  let lineStart = 0;
  let lines = 1;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 10) {
      longest = Math.max(longest, i - lineStart);
      lineStart = i + 1;
      lines++;
    }
  }
  longest = Math.max(longest, bytes.length - lineStart);
  const meanLine = bytes.length / lines;
  if (longest > 5000 || (meanLine > 300 && bytes.length > 2000)) return 'minified';
  return 'text';
}

async function readText(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
}
