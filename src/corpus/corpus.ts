// The corpus: which files of a folder the model trains on, and what of them. Walks the tree
// honouring .gitignore files at every level (with the `ignore` package: git's semantics incl.
// negations), .git/info/exclude, git's core.excludesFile (read from the git config files, not by
// running git) and the editor's include/exclude globs; skips what is never source (VCS, dependency
// and build folders, binaries, lockfiles, key files and credential stores, shell histories,
// minified bundles, source maps, generated files, oversized files, symlinks, other filesystems);
// keeps only the cell sources of notebooks; and redacts secrets in what it keeps. Every skip is
// tallied by reason, in files and bytes, so the user can see what was left out and why. A home
// folder or a filesystem root is refused unless asked for: it is not a project, and it holds the
// user's credentials.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ignore, { Ignore } from 'ignore';
import type { Document } from '../ml/dataset';
import { hashString } from '../ml/rng';
import { compileSecretPatterns, redactSecretsInBytes } from './secrets';
import { RUN_DIR_NAME } from '../run/layout';

/** Version control metadata. */
const VCS_DIRS = new Set(['.git', '.hg', '.svn', '.bzr', '_darcs', '.jj']);
/** Dependencies and vendored copies of other people's code. */
const VENDORED_DIRS = new Set(['node_modules', 'bower_components', 'jspm_packages', 'vendor', 'third_party', '.venv', 'venv', '.yarn', '.pnpm-store', 'Pods', 'site-packages', 'elm-stuff']);
/** Build outputs, caches and tools' state: generated, never written by hand. */
const BUILD_DIRS = new Set(['target', '.next', '.nuxt', '.svelte-kit', '.turbo', '.parcel-cache', '.output', '__pycache__', '.tox', '.nox', '.mypy_cache', '.pytest_cache', '.ruff_cache', '.cache', '.gradle', '.terraform', '.dart_tool', '.angular', '.idea', '.vs']);
/** This tool's own output folder (any run's, wherever --out put the current one). */
const OWN_OUTPUT_DIR = RUN_DIR_NAME;
/** Generated dependency manifests: large, repetitive, not code anyone writes. */
const LOCKFILES = new Set(['package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'Cargo.lock', 'poetry.lock', 'Pipfile.lock', 'composer.lock', 'Gemfile.lock', 'go.sum', 'npm-shrinkwrap.json', 'bun.lockb', 'flake.lock', 'packages.lock.json', 'uv.lock', 'mix.lock', 'pubspec.lock', 'Podfile.lock']);
/**
 * Files that are secrets as a whole: skipped unread rather than redacted, because their every
 * value is a credential (.env, private keys, keystores, netrc, Terraform state).
 */
const SECRET_FILE_PATTERNS = [
  /^\.env(\..*)?$/, /^\.envrc$/, /\.(pem|key|p12|pfx|keystore|jks|ppk|kdbx|tfstate|tfstate\.backup)$/i,
  // SSH keys by their default names, any suffix (id_ed25519.pub is public, but it names the key beside it).
  /^id_(?:rsa|dsa|ecdsa|ed25519|ecdsa_sk|ed25519_sk|xmss)(?:[._-].*)?$/,
  // Credential stores of tools: netrc, git, PostgreSQL, MySQL, npm, PyPI, Docker, S3, boto, kubeconfig.
  /^(?:\.netrc|_netrc|\.pgpass|\.htpasswd|\.git-credentials|\.npmrc|\.pypirc|\.my\.cnf|\.mylogin\.cnf|\.dockercfg|\.s3cfg|\.boto|kubeconfig|.+\.kubeconfig)$/,
  // Shell and REPL histories: every command typed, passwords on command lines included.
  /^\.[\w-]+_history$/, /^(?:\.history|\.zhistory|\.Rhistory|\.lesshst|\.dbshell|fish_history|ghci_history|repl_history\.jl)$/,
];
/** Files that are credentials by where they are (relative path ends with one of these). */
const SECRET_FILE_PATHS = [/(?:^|\/)\.docker\/config\.json$/, /(?:^|\/)\.config\/gh\/hosts\.ya?ml$/, /(?:^|\/)\.terraform\.d\/credentials\.tfrc\.json$/];
/** Folders that hold credentials only: SSH and GnuPG keys, cloud CLIs' credentials, kubeconfig, pass. */
const SECRET_DIRS = new Set(['.ssh', '.gnupg', '.aws', '.azure', '.kube', '.password-store']);
const SECRET_DIR_PATHS = [/(?:^|\/)\.config\/(?:gcloud|gh|hub|op|doctl)$/];
const BINARY_EXT = /\.(png|jpe?g|gif|bmp|ico|webp|tiff?|psd|pdf|zip|gz|tgz|bz2|xz|7z|rar|jar|war|class|o|obj|a|lib|so|dylib|dll|exe|bin|dat|wasm|pyc|pyo|woff2?|ttf|otf|eot|mp3|mp4|wav|ogg|flac|avi|mov|mkv|sqlite|db|onnx|pt|safetensors|npy|npz|h5|parquet)$/i;
/** Source maps by name; other `.map` files are recognised by content (see classifyContent). */
const SOURCE_MAP_NAME = /\.(m?js|cjs|jsx|tsx?|css|scss|less)\.map$/i;
/** Notebooks with big outputs (plots) are read up to this multiple of the size cap: the cap applies to the cell sources. */
const NOTEBOOK_READ_FACTOR = 32;

export type SkipReason =
  | 'sampled-out' // over the memory cap's byte budget: left out of a deterministic sample
  | 'ignored' // .gitignore files and .git/info/exclude
  | 'excluded' // includeGlobs/excludeGlobs (editor settings), excludeDirs, this tool's output folder
  | 'vcs' // .git and friends
  | 'vendored' // dependency folders
  | 'build-output' // build outputs, caches, tools' state
  | 'lockfile'
  | 'secret-file' // .env, key files, credential stores, shell histories (and folders: .ssh, .aws, .kube): skipped whole, never read
  | 'binary'
  | 'too-large'
  | 'minified'
  | 'source-map'
  | 'generated' // "@generated", "DO NOT EDIT", "Code generated by …" in the first lines
  | 'symlink' // never followed (loops, paths outside the workspace)
  | 'other-device' // folders on another filesystem than the root (mounts: network shares, /proc, a USB disk)
  | 'special' // FIFOs, sockets, devices
  | 'empty'
  | 'unreadable' // I/O errors, notebooks that are not valid JSON
  | 'notebook-outputs'; // partial: notebooks are kept, their outputs and metadata are not

/**
 * What one reason left out. Skipped folders are never descended into (a 100K-file node_modules
 * costs one readdir entry), so they count in `dirs`, not in `files`/`bytes`. For
 * 'notebook-outputs', `files` counts notebooks and `bytes` what was dropped from them.
 */
export interface SkipTally {
  files: number;
  bytes: number;
  dirs: number;
}

export interface CorpusSummary {
  /** Documents kept, and their bytes after notebook extraction and redaction. */
  files: number;
  bytes: number;
  skipped: Partial<Record<SkipReason, SkipTally>>;
  /** Redacted secrets per rule id (see secrets.ts), over all kept files. */
  secrets: Record<string, number>;
  /** Files actually read from disk (the rest were unchanged since the last index). */
  filesRead: number;
}

/**
 * A kept file. `unchanged` files (see IndexOptions.reuse) were not read again: their `bytes` are
 * empty and `length` is the redacted length recorded when they were last read.
 */
export interface CorpusDoc extends Document {
  size: number;
  mtimeMs: number;
  length: number;
  unchanged: boolean;
  /** Secrets redacted in this file, per rule (kept so an unchanged file still counts them). */
  secrets?: Record<string, number>;
}

export interface Corpus {
  root: string;
  docs: CorpusDoc[];
  summary: CorpusSummary;
}

export interface IndexOptions {
  maxFileBytes: number;
  /** Extra directories (absolute) to leave out, e.g. the run's output directory. */
  excludeDirs?: string[];
  /**
   * Globs in VS Code syntax, relative to the root (`**` any depth, `*`, `?`, `{a,b}`, `[abc]`):
   * the editor's files.exclude / search.exclude keys and the extension's own exclude setting.
   * A glob matching a folder excludes everything in it.
   */
  excludeGlobs?: string[];
  /** When non-empty, only files matching one of these globs (same syntax) are read. */
  includeGlobs?: string[];
  /** Extra secret patterns (JavaScript regex source); the first capture group, if any, is what is redacted. */
  extraSecretPatterns?: string[];
  /**
   * Keep at most about this many bytes (the memory cap's share): beyond it, a deterministic
   * sample of files is kept — by a hash of their path, so the choice does not depend on the
   * walk order and a file stays in or out across runs. Dropped files count as 'sampled-out'.
   */
  maxTotalBytes?: number;
  /**
   * Incremental indexing: called for every candidate file with its size and modification time;
   * returning the file's previous record means it has not changed and is not read again.
   */
  reuse?: (relPath: string, size: number, mtimeMs: number) => { length: number; secrets?: Record<string, number> } | null;
  onProgress?: (filesSeen: number) => void;
  /**
   * Index the folder even if it is a filesystem root, the user's home folder or a folder that
   * contains it (refused otherwise: see refuseHomeOrRoot).
   */
  allowHomeOrRoot?: boolean;
}

/** How the CLI overrides the refusal (the flag is wired by the CLI). */
export const ALLOW_HOME_HINT = 'pass --allow-home to train it anyway';

/**
 * Throws when `absRoot` is a filesystem root, the home folder or an ancestor of it: such a folder
 * is not a project, it holds the user's keys, credentials and histories, and indexing it would
 * read the whole disk. Symlinks are resolved on both sides.
 */
export async function refuseHomeOrRoot(absRoot: string): Promise<void> {
  const real = await fs.realpath(absRoot).catch(() => absRoot);
  const homeDir = os.homedir();
  const home = homeDir === '' ? '' : await fs.realpath(homeDir).catch(() => path.resolve(homeDir));
  let what: string | null = null;
  if (path.parse(real).root === real) what = 'the root of the filesystem';
  else if (home !== '' && real === home) what = 'your home folder';
  else if (home !== '' && home.startsWith(real.endsWith(path.sep) ? real : real + path.sep)) what = `a folder that contains your home folder (${home})`;
  if (what === null) return;
  throw new Error(`refusing to index ${absRoot}: it is ${what}, which holds your keys, credentials and shell histories rather than a project, and would mean reading the whole disk. Open a project folder instead, or ${ALLOW_HOME_HINT}`);
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
  if (opts.allowHomeOrRoot !== true) await refuseHomeOrRoot(absRoot);
  const rootDevice = st.dev;
  const excluded = new Set((opts.excludeDirs ?? []).map((d) => path.resolve(d)));
  const excludeGlobs = globMatcher(opts.excludeGlobs ?? []);
  const includeGlobs = globMatcher(opts.includeGlobs ?? []);
  const extraPatterns = compileSecretPatterns(opts.extraSecretPatterns ?? []);
  const docs: CorpusDoc[] = [];
  /** Files whose path hash is below this are kept (all of them until the byte budget is exceeded). */
  let keepBelow = 2 ** 32;
  const summary: CorpusSummary = { files: 0, bytes: 0, skipped: {}, secrets: {}, filesRead: 0 };
  const tally = (reason: SkipReason): SkipTally => (summary.skipped[reason] ??= { files: 0, bytes: 0, dirs: 0 });
  const skip = (reason: SkipReason, bytes: number): void => {
    const t = tally(reason);
    t.files++;
    t.bytes += bytes;
  };
  const skipDir = (reason: SkipReason): void => {
    tally(reason).dirs++;
  };
  let seen = 0;

  // Each entry: an ignore matcher and the directory its patterns are relative to.
  type Rules = { base: string; ig: Ignore }[];
  const rootRules: Rules = [];
  // Patterns that apply to the whole tree, as git applies them: core.excludesFile (the user's
  // global ignores) and .git/info/exclude.
  const gitDir = await findGitDir(absRoot);
  for (const file of [await excludesFile(absRoot, gitDir), gitDir === null ? null : path.join(gitDir.common, 'info', 'exclude')]) {
    const text = file === null ? null : await readText(file);
    if (text !== null) rootRules.push({ base: absRoot, ig: ignore().add(text) });
  }

  const isIgnored = (rules: Rules, abs: string, isDir: boolean): boolean => {
    for (const { base, ig } of rules) {
      let rel = path.relative(base, abs).split(path.sep).join('/');
      if (rel === '' || rel.startsWith('..')) continue;
      if (isDir) rel += '/';
      if (ig.ignores(rel)) return true;
    }
    return false;
  };
  const relPath = (abs: string): string => path.relative(absRoot, abs).split(path.sep).join('/');

  const dirSkipReason = (name: string, abs: string, rules: Rules): SkipReason | null => {
    if (VCS_DIRS.has(name)) return 'vcs';
    if (SECRET_DIRS.has(name) || SECRET_DIR_PATHS.some((re) => re.test(relPath(abs)))) return 'secret-file';
    if (VENDORED_DIRS.has(name)) return 'vendored';
    if (BUILD_DIRS.has(name)) return 'build-output';
    if (name === OWN_OUTPUT_DIR || excluded.has(abs)) return 'excluded';
    if (isIgnored(rules, abs, true)) return 'ignored';
    if (excludeGlobs !== null && excludeGlobs.ignores(relPath(abs) + '/')) return 'excluded';
    return null;
  };

  /** Reads and vets one file; on success the document is added. */
  const keep = (doc: CorpusDoc): void => {
    for (const [rule, n] of Object.entries(doc.secrets ?? {})) summary.secrets[rule] = (summary.secrets[rule] ?? 0) + n;
    if (hashString(doc.path) >= keepBelow) return skip('sampled-out', doc.length);
    docs.push(doc);
    summary.files++;
    summary.bytes += doc.length;
    // Over budget: halve the kept share of the hash space and drop what falls outside it.
    while (opts.maxTotalBytes !== undefined && summary.bytes > opts.maxTotalBytes && keepBelow > 1) {
      keepBelow = Math.floor(keepBelow / 2);
      for (let i = docs.length - 1; i >= 0; i--) {
        const d = docs[i]!;
        if (hashString(d.path) < keepBelow) continue;
        docs.splice(i, 1);
        summary.files--;
        summary.bytes -= d.length;
        const t = tally('sampled-out');
        t.files++;
        t.bytes += d.length;
      }
    }
  };

  const indexFile = async (abs: string, name: string, rules: Rules): Promise<void> => {
    let size = 0;
    let mtimeMs = 0;
    try {
      const st = await fs.stat(abs);
      size = st.size;
      mtimeMs = st.mtimeMs;
    } catch {
      skip('unreadable', 0);
      return;
    }
    const rel = relPath(abs);
    if (isIgnored(rules, abs, false)) return skip('ignored', size);
    if ((excludeGlobs !== null && excludeGlobs.ignores(rel)) || (includeGlobs !== null && !includeGlobs.ignores(rel))) return skip('excluded', size);
    if (LOCKFILES.has(name)) return skip('lockfile', size);
    if (SECRET_FILE_PATTERNS.some((re) => re.test(name)) || SECRET_FILE_PATHS.some((re) => re.test(rel))) return skip('secret-file', size);
    if (BINARY_EXT.test(name)) return skip('binary', size);
    if (SOURCE_MAP_NAME.test(name)) return skip('source-map', size);
    if (size === 0) return skip('empty', 0);
    const isNotebook = /\.ipynb$/i.test(name);
    if (size > opts.maxFileBytes * (isNotebook ? NOTEBOOK_READ_FACTOR : 1)) return skip('too-large', size);
    const previous = opts.reuse?.(rel, size, mtimeMs) ?? null;
    if (previous !== null) {
      return keep({ path: rel, bytes: new Uint8Array(0), size, mtimeMs, length: previous.length, unchanged: true, ...(previous.secrets !== undefined ? { secrets: previous.secrets } : {}) });
    }
    summary.filesRead++;
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(abs);
    } catch {
      return skip('unreadable', size);
    }
    if (isNotebook) {
      const source = notebookToText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
      if (source === null) return skip('unreadable', size);
      bytes = Buffer.from(source, 'utf8');
      if (bytes.length === 0) return skip('empty', size);
      if (bytes.length > opts.maxFileBytes) return skip('too-large', size);
    }
    const kind = classifyContent(bytes, name);
    if (kind !== 'text') return skip(kind, size);
    if (isNotebook) {
      const dropped = tally('notebook-outputs');
      dropped.files++;
      dropped.bytes += Math.max(0, size - bytes.length);
    }
    const redacted = redactSecretsInBytes(bytes, extraPatterns);
    keep({
      path: rel, bytes: redacted.bytes, size, mtimeMs, length: redacted.bytes.length, unchanged: false,
      ...(Object.keys(redacted.counts).length > 0 ? { secrets: redacted.counts } : {}),
    });
  };

  /** The walk stays on the root's filesystem: a mount below it (a network share, /proc, a backup disk) is not entered. */
  const sameDevice = async (dir: string): Promise<boolean> => {
    try {
      return (await fs.stat(dir)).dev === rootDevice;
    } catch {
      return true; // unreadable: readdir reports it
    }
  };

  const walk = async (dir: string, inherited: Rules): Promise<void> => {
    const gitignore = await readText(path.join(dir, '.gitignore'));
    const rules = gitignore === null ? inherited : [...inherited, { base: dir, ig: ignore().add(gitignore) }];
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      skipDir('unreadable');
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      if (e.isSymbolicLink()) {
        // Not followed: symlinks can loop or point outside the workspace. Counted as a file, 0 bytes.
        skip('symlink', 0);
        continue;
      }
      if (e.isDirectory()) {
        const reason = dirSkipReason(e.name, abs, rules);
        if (reason !== null) skipDir(reason);
        else if (!(await sameDevice(abs))) skipDir('other-device');
        else await walk(abs, rules);
        continue;
      }
      seen++;
      if (seen % 200 === 0) opts.onProgress?.(seen);
      if (!e.isFile()) {
        skip('special', 0);
        continue;
      }
      await indexFile(abs, e.name, rules);
    }
  };
  await walk(absRoot, rootRules);
  opts.onProgress?.(seen);
  if (docs.length === 0) {
    const skipped = Object.values(summary.skipped).reduce((s, t) => s + t.files, 0);
    const mounts = summary.skipped['other-device']?.dirs ?? 0;
    const mountNote = `${mounts} folder${mounts === 1 ? '' : 's'} on another filesystem not entered`;
    throw new Error(
      seen === 0
        ? `no files in ${absRoot}${mounts > 0 ? ` (${mountNote})` : ''}: point workspace-lm at a folder with source code`
        : `no text files to train on in ${absRoot} (${skipped} skipped as ignored, binary, generated or too large${mounts > 0 ? `; ${mountNote}` : ''})`,
    );
  }
  return { root: absRoot, docs, summary };
}

export type ContentKind = 'text' | 'binary' | 'minified' | 'source-map' | 'generated';

/** Text, or the reason it is not trainable text. */
export function classifyContent(bytes: Uint8Array, name: string): ContentKind {
  const head = bytes.subarray(0, 8192);
  // NUL bytes do not occur in text files of any encoding we train on.
  if (head.includes(0)) return 'binary';
  if (/\.map$/i.test(name) && /^\s*\{\s*"version"\s*:\s*3\b/.test(latin1(bytes.subarray(0, 256)))) return 'source-map';
  // Minified/bundled: by name, or very long lines.
  if (/\.min\.(js|css)$|\.bundle\.js$/i.test(name)) return 'minified';
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
  if (hasGeneratedHeader(bytes)) return 'generated';
  return 'text';
}

/** A comment line's marker (the text after it is what the generated-file rules read). */
const COMMENT_START = /^\s*(\/\/+!?|#+!?|\/\*+!?|\*+|--|;+|<!--|%+|"""|'''|\(\*|\{-|rem\b)\s*/i;
/** Markers that tools write into their output: "@generated", "DO NOT EDIT", "<auto-generated>". */
const GENERATED_MARKER = /@generated\b|\bDO NOT (?:EDIT|MODIFY)\b|<auto-generated|\bCode generated\b/;
const GENERATED_WORDS = /\b(?:auto-?generated|automatically generated|machine[- ]generated)\b|\b(?:this|the) (?:file|code|module|header|class) (?:is |was |has been )?(?:automatically |auto-?)?generated\b/i;
/** "Generated by Django…", "file generated by setuptools_scm": only at the start of a comment, not "* generated by V8, …" inside prose. */
const GENERATED_LEAD = /^(?:(?:file|code) (?:is |was |has been )?)?generated (?:by|from|with|using)\b/i;
/** Lines of the head searched: generators write their header first, possibly after a license. */
const GENERATED_HEAD_LINES = 10;

/** True when a comment in the first lines says a tool wrote the file ("@generated", "DO NOT EDIT"…). */
export function hasGeneratedHeader(bytes: Uint8Array): boolean {
  const lines = latin1(bytes.subarray(0, 2048)).split('\n', GENERATED_HEAD_LINES);
  return lines.some((line) => {
    const comment = COMMENT_START.exec(line);
    if (comment === null) return false; // "__version__ = '1.0'  # DO NOT EDIT" is code with a remark
    const text = line.slice(comment[0].length);
    return GENERATED_MARKER.test(text) || GENERATED_WORDS.test(text) || (!comment[1]!.startsWith('*') && GENERATED_LEAD.test(text));
  });
}

/** Languages whose line comment is `#` (the rest get `//`). */
const HASH_COMMENT_LANGUAGES = new Set(['python', 'r', 'julia', 'ruby', 'perl', 'bash', 'sh', 'shell', 'powershell', 'coconut', 'nim', 'elixir']);

/**
 * A notebook's cell sources as one script in the "percent" format (jupytext, VS Code): code cells
 * as they are, markdown cells as comments; outputs, execution counts and metadata dropped (they
 * are data, not code, and outputs may print secrets). Null if it is not a notebook.
 */
export function notebookToText(json: string): string | null {
  let nb: unknown;
  try {
    nb = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof nb !== 'object' || nb === null || !Array.isArray((nb as { cells?: unknown }).cells)) return null;
  const meta = (nb as { metadata?: { kernelspec?: { language?: unknown }; language_info?: { name?: unknown } } }).metadata;
  const language = String(meta?.kernelspec?.language ?? meta?.language_info?.name ?? 'python').toLowerCase();
  const comment = HASH_COMMENT_LANGUAGES.has(language) ? '#' : '//';
  const parts: string[] = [];
  for (const cell of (nb as { cells: unknown[] }).cells) {
    if (typeof cell !== 'object' || cell === null) continue;
    const { cell_type: type, source } = cell as { cell_type?: unknown; source?: unknown };
    const text = Array.isArray(source) ? source.filter((s) => typeof s === 'string').join('') : typeof source === 'string' ? source : '';
    if (text.trim() === '') continue;
    if (type === 'code') parts.push(`${comment} %%\n${text.replace(/\n*$/, '')}\n`);
    else if (type === 'markdown') parts.push(`${comment} %% [markdown]\n${text.replace(/\n*$/, '').split('\n').map((l) => (l === '' ? comment : `${comment} ${l}`)).join('\n')}\n`);
  }
  return parts.join('\n');
}

/**
 * A matcher for VS Code globs, built on `ignore` (gitignore syntax) — null when there are none.
 * The translation: braces are expanded (gitignore has none); a glob not starting with `**` is
 * anchored to the root with a leading `/`, since a VS Code glob is matched against the whole
 * relative path (`*.js` is top-level only) while a slash-free gitignore pattern matches at any
 * depth. `**`, `*`, `?` and `[...]` mean the same in both, and a pattern matching a folder covers
 * its contents in both. Matching is case-insensitive (`ignore`'s default, as for .gitignore here).
 */
export function globMatcher(globs: readonly string[]): Ignore | null {
  const patterns: string[] = [];
  for (const glob of globs) {
    for (const expanded of expandBraces(glob.trim().replace(/\\/g, '/'))) {
      const p = expanded.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
      if (p === '') continue;
      patterns.push(p.startsWith('**') ? p : `/${p}`);
    }
  }
  return patterns.length === 0 ? null : ignore().add(patterns);
}

/** `a/{b,c}/*.{js,ts}` → four patterns; nested braces too. Capped, since each brace multiplies. */
export function expandBraces(glob: string, limit = 1024): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '{') {
      if (depth++ === 0) open = i;
    } else if (c === '}' && depth > 0 && --depth === 0) {
      const alternatives: string[] = [];
      let level = 0;
      let start = open + 1;
      for (let j = open + 1; j < i; j++) {
        if (glob[j] === '{') level++;
        else if (glob[j] === '}') level--;
        else if (glob[j] === ',' && level === 0) {
          alternatives.push(glob.slice(start, j));
          start = j + 1;
        }
      }
      alternatives.push(glob.slice(start, i));
      const out: string[] = [];
      for (const alt of alternatives) {
        for (const x of expandBraces(glob.slice(0, open) + alt + glob.slice(i + 1), limit)) {
          if (out.length < limit) out.push(x);
        }
      }
      return out;
    }
  }
  return [glob];
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

// ---------------------------------------------------------------------------------------------
// git's configuration, read as git reads it (no git process is started)

interface GitDir {
  /** The repository's git directory (.git, or a worktree's directory inside the main one). */
  dir: string;
  /** Where config and info/exclude live: the main repository's .git for a linked worktree. */
  common: string;
}

/** The git directory of a working tree at `root`: `.git` itself, or where a `.git` file ("gitdir: …") points. */
async function findGitDir(root: string): Promise<GitDir | null> {
  const dotGit = path.join(root, '.git');
  let st;
  try {
    st = await fs.stat(dotGit);
  } catch {
    return null;
  }
  if (st.isDirectory()) return { dir: dotGit, common: dotGit };
  const text = await readText(dotGit);
  const m = text === null ? null : /^gitdir:[ \t]*(.+?)[ \t]*$/m.exec(text);
  if (m === null) return null;
  const dir = path.resolve(root, m[1]!);
  const commondir = await readText(path.join(dir, 'commondir'));
  return { dir, common: commondir === null ? dir : path.resolve(dir, commondir.trim()) };
}

/**
 * The value of core.excludesFile in a git config file's text (the last one wins, as in git), or
 * undefined when the file does not set it. Sections are case-insensitive, subsections
 * (`[core "x"]`) are other sections; values may be quoted, with git's escapes, and end at an
 * unquoted `#` or `;`. `include` directives are not followed.
 */
export function parseExcludesFile(config: string): string | undefined {
  let section = '';
  let value: string | undefined;
  for (const raw of config.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[\s*([A-Za-z0-9.-]+)(\s+"(?:[^"\\]|\\.)*")?\s*\](.*)$/.exec(line);
    if (header !== null) {
      section = header[2] === undefined ? header[1]!.toLowerCase() : `${header[1]!.toLowerCase()} sub`;
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$/.exec(line);
    if (kv === null || section !== 'core' || kv[1]!.toLowerCase() !== 'excludesfile' || kv[2] === undefined) continue;
    value = unquoteGitValue(kv[2]);
  }
  return value;
}

function unquoteGitValue(v: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && i + 1 < v.length) {
      const n = v[++i]!;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'b' ? '' : n;
    } else if (!quoted && (c === '#' || c === ';')) break;
    else out += c;
  }
  return quoted ? out : out.trim();
}

/**
 * The global excludes file git would use for a working tree at `root`: core.excludesFile from
 * the system, XDG, global and repository config files (later ones override earlier ones, as in
 * git; GIT_CONFIG_GLOBAL replaces the XDG and ~/.gitconfig files), `~/` expanded, a relative path
 * taken from the root; when unset, git's default $XDG_CONFIG_HOME/git/ignore (or
 * ~/.config/git/ignore).
 */
async function excludesFile(root: string, gitDir: GitDir | null): Promise<string | null> {
  const home = os.homedir();
  const xdg = process.env.XDG_CONFIG_HOME !== undefined && process.env.XDG_CONFIG_HOME !== '' ? process.env.XDG_CONFIG_HOME : home === '' ? null : path.join(home, '.config');
  const globalOverride = process.env.GIT_CONFIG_GLOBAL;
  const files = [
    process.env.GIT_CONFIG_NOSYSTEM === undefined ? '/etc/gitconfig' : null,
    ...(globalOverride !== undefined && globalOverride !== '' ? [globalOverride] : [xdg === null ? null : path.join(xdg, 'git', 'config'), home === '' ? null : path.join(home, '.gitconfig')]),
    gitDir === null ? null : path.join(gitDir.common, 'config'),
  ];
  let value: string | undefined;
  for (const file of files) {
    if (file === null) continue;
    const text = await readText(file);
    const v = text === null ? undefined : parseExcludesFile(text);
    if (v !== undefined) value = v;
  }
  if (value === undefined) return xdg === null ? null : path.join(xdg, 'git', 'ignore');
  if (value === '') return null;
  if (value === '~' || value.startsWith('~/')) return home === '' ? null : path.join(home, value.slice(1));
  return path.resolve(root, value);
}

async function readText(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
}
