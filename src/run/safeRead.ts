// The one way this project reads a file of a run or model folder: such folders may come from
// anywhere (a cloned repository's .workspace-lm, a model folder downloaded to import), so every
// file in them is data to check, never something to trust. A read here
//   - refuses anything but a regular file: no FIFO (opening one blocks until a writer comes), no
//     device (/dev/zero never ends), no directory, no socket;
//   - refuses a symbolic link, unless it resolves inside a given folder (`allowSymlinkWithin`):
//     `model.safetensors -> ~/.ssh/id_rsa` is not a model;
//   - checks the size against a cap per kind of file (READ_LIMITS) before reading a byte.
// The file is opened with O_NOFOLLOW | O_NONBLOCK and checked with fstat on the open handle, so
// what is checked is what is read (no race between a check by name and the open). lstat first
// only avoids opening what is plainly not a regular file.

import { createHash } from 'node:crypto';
import { promises as fs, constants as fsConstants, type Stats } from 'node:fs';
import * as path from 'node:path';

/** Largest size, in bytes, of each kind of file read from a run or model folder. */
export const READ_LIMITS = {
  /** A GPT-2 config.json is ~500 bytes; 1 MB is anything any tool writes. */
  config: 1 << 20,
  /**
   * tokenizer.json: at most 65,536 ids (uint16 tokens), each a vocab entry and a merge (~30
   * bytes at typical token lengths): ~2 MB; 16 MB leaves room for long tokens.
   */
  tokenizer: 16 << 20,
  /** trainer_state.json / torch_state.json / imported.json: the history is capped (trainLoop's MAX_HISTORY); a few hundred KB. */
  state: 16 << 20,
  /** data/meta.json: lists every training file's path (~100 bytes each). */
  datasetMeta: 64 << 20,
  /** eval.json. */
  evalReport: 16 << 20,
  /** model.safetensors: 512M float32 parameters, far beyond what trains on a CPU (the loader's own check against config.json is tighter). */
  model: 2 * 1024 ** 3,
  /** optimizer.safetensors: two moments per parameter. */
  optimizer: 4 * 1024 ** 3,
  /** data/train.bin, val.bin: 512M uint16 tokens (the dataset builder's memory cap keeps them far smaller). */
  datasetBin: 1024 ** 3,
} as const;

export interface SafeReadOptions {
  /** A symbolic link is followed only when its target (fully resolved) is inside this folder. */
  allowSymlinkWithin?: string;
}

/** An Error with the errno-style code of what went wrong ('ENOENT' when the file does not exist). */
function readError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function bytesText(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n % (1 << 20) === 0 ? 0 : 1)} MB` : `${n} bytes`;
}

function isInside(child: string, dir: string): boolean {
  const rel = path.relative(dir, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** O_NOFOLLOW and O_NONBLOCK where the platform has them (not on Windows, which has no FIFOs to block on in a folder). */
const OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0) | (fsConstants.O_NONBLOCK ?? 0);

/** The path to open for `file`: itself, or the target of a symbolic link that stays inside the allowed folder. */
async function resolveTarget(file: string, opts: SafeReadOptions): Promise<string> {
  let st: Stats;
  try {
    st = await fs.lstat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw readError(code === 'ENOENT' ? `missing ${file}` : `cannot read ${file}: ${(e as Error).message}`, code);
  }
  if (st.isSymbolicLink()) {
    if (opts.allowSymlinkWithin === undefined) throw readError(`${file} is a symbolic link: refusing to follow it`, 'ELOOP');
    let target: string;
    let within: string;
    try {
      [target, within] = await Promise.all([fs.realpath(file), fs.realpath(opts.allowSymlinkWithin)]);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw readError(code === 'ENOENT' ? `missing ${file} (a symbolic link to nothing)` : `cannot read ${file}: ${(e as Error).message}`, code);
    }
    if (!isInside(target, within)) throw readError(`${file} is a symbolic link to outside ${opts.allowSymlinkWithin}: refusing to follow it`, 'ELOOP');
    const tst = await fs.lstat(target);
    if (!tst.isFile()) throw readError(`${file} is a symbolic link to ${kindOf(tst)}, not a regular file: refusing to read it`, 'EINVAL');
    return target;
  }
  if (!st.isFile()) throw readError(`${file} is ${kindOf(st)}, not a regular file: refusing to read it`, 'EINVAL');
  return file;
}

/** A regular file, open for reading, whose size was checked against a cap. Close it when done. */
export interface RegularFile {
  readonly file: string;
  readonly size: number;
  /** Exactly `length` bytes from `position` (fewer only if the file shrank meanwhile: an error). */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Opens `file` for reading if it is a regular file (or an allowed symbolic link to one) of at
 * most `maxBytes`; otherwise throws an Error naming the file (code 'ENOENT' when it is missing).
 */
export async function openRegularFile(file: string, maxBytes: number, opts: SafeReadOptions = {}): Promise<RegularFile> {
  const target = await resolveTarget(file, opts);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(target, OPEN_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ELOOP') throw readError(`${file} became a symbolic link: refusing to follow it`, code);
    throw readError(code === 'ENOENT' ? `missing ${file}` : `cannot read ${file}: ${(e as Error).message}`, code);
  }
  let size: number;
  try {
    const st = await fh.stat();
    size = st.size;
    if (!st.isFile()) throw readError(`${file} is ${kindOf(st)}, not a regular file: refusing to read it`, 'EINVAL');
    if (st.size > maxBytes) throw readError(`${file} is ${bytesText(st.size)}, more than the ${bytesText(maxBytes)} such a file may have: refusing to read it`, 'EFBIG');
  } catch (e) {
    await fh.close();
    throw e;
  }
  return {
    file,
    size,
    async read(position: number, length: number): Promise<Buffer> {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, position + got);
        if (bytesRead === 0) throw readError(`${file} changed while being read (ends at byte ${position + got}, expected ${position + length})`, 'EIO');
        got += bytesRead;
      }
      return buf;
    },
    close: () => fh.close(),
  };
}

/** The whole content of a regular file of at most `maxBytes` (see openRegularFile for what is refused). */
export async function readRegularFile(file: string, maxBytes: number, opts: SafeReadOptions = {}): Promise<Buffer> {
  const f = await openRegularFile(file, maxBytes, opts);
  try {
    return await f.read(0, f.size);
  } finally {
    await f.close();
  }
}

/** sha256 (hex) of a regular file of at most `maxBytes`, read in slices (never the whole file in memory). */
export async function hashRegularFile(file: string, maxBytes: number, opts: SafeReadOptions = {}): Promise<string> {
  const f = await openRegularFile(file, maxBytes, opts);
  try {
    const hash = createHash('sha256');
    const slice = 4 << 20;
    for (let pos = 0; pos < f.size; pos += slice) hash.update(await f.read(pos, Math.min(slice, f.size - pos)));
    return hash.digest('hex');
  } finally {
    await f.close();
  }
}

/**
 * lstat of `file` (never follows a link, never opens: a FIFO cannot block it), or null when it
 * does not exist. For pollers that only want to notice a change.
 */
export async function lstatIfExists(file: string): Promise<Stats | null> {
  return fs.lstat(file).catch(() => null);
}

/** Throws an Error naming `file` unless it is a regular file (or an allowed link to one); for a file another function will copy. */
export async function assertRegularFile(file: string, maxBytes: number, opts: SafeReadOptions = {}): Promise<void> {
  await (await openRegularFile(file, maxBytes, opts)).close();
}

/**
 * JSON.parse of a file's bytes; a syntax error names the file and the position only (V8 quotes
 * the text around the error, which must not end up in a log: the file might be anything).
 */
export function parseJsonFile(bytes: Uint8Array, file: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file}: not valid UTF-8 text`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${jsonErrorText(e)})`);
  }
}

/** V8's JSON.parse message without the quoted source text ("Unexpected token 'x', "<the text>" is not valid JSON"), on one line. */
export function jsonErrorText(e: unknown): string {
  const m = String((e as Error | undefined)?.message ?? e).replace(/\s+/g, ' ');
  if (/is not valid JSON$/.test(m) || m.includes('"')) return m.startsWith('Unexpected token') ? 'unexpected token' : 'syntax error';
  return m.length > 200 ? m.slice(0, 200) + '…' : m;
}
