// The one way this project writes a file: to a fresh temporary name in the same folder (O_EXCL,
// random, so two writers never share one), fsynced, renamed over the target, then the folder
// fsynced — a crash or a kill leaves the old file or the new one, never a torn one. On any error
// the temporary file is removed and the target is untouched.

import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import * as path from 'node:path';

/** Content: a string (UTF-8), bytes, or chunks written in order (views of tensors: no copy of the whole file). */
export type FileContent = string | Uint8Array | readonly Uint8Array[];

/** Pieces larger than this are written in slices (one write call per 16 MB). */
const WRITE_SLICE = 16 << 20;

/** Writes `data` to an open file handle, fsyncs, and returns the sha256 of the content. */
async function writeSynced(fh: fs.FileHandle, data: FileContent): Promise<string> {
  const chunks = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  const hash = createHash('sha256');
  for (const c of chunks) {
    hash.update(c);
    for (let pos = 0; pos < c.length; pos += WRITE_SLICE) await fh.write(c.subarray(pos, Math.min(c.length, pos + WRITE_SLICE)));
  }
  await fh.sync();
  return hash.digest('hex');
}

/** fsyncs a folder so a rename inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, fsConstants.O_RDONLY);
    try { await fh.sync(); } finally { await fh.close(); }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  }
}

/** A temporary name next to `file` that no other writer uses (dot-prefixed, so listings skip it). */
function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Writes `file` atomically and durably; returns the sha256 of its content. */
export async function writeAtomic(file: string, data: FileContent): Promise<string> {
  const tmp = tempNameFor(file);
  const fh = await fs.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  try {
    let hash: string;
    try {
      hash = await writeSynced(fh, data);
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    await fsyncDir(path.dirname(file));
    return hash;
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** Writes a new file (that must not exist yet) durably, without a rename: for files inside a temporary folder that is renamed as a whole. Returns its sha256. */
export async function writeNewFile(file: string, data: FileContent): Promise<string> {
  const fh = await fs.open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  try {
    return await writeSynced(fh, data);
  } finally {
    await fh.close();
  }
}

/** Replaces `file` by a hard link to (or, where links fail, a copy of) `source`, atomically. */
export async function linkAtomic(source: string, file: string): Promise<void> {
  const tmp = tempNameFor(file);
  try {
    await fs.link(source, tmp).catch(() => fs.copyFile(source, tmp, fsConstants.COPYFILE_EXCL));
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** Copies `source` to `file` atomically and durably (errors name the source when it is missing). */
export async function copyAtomic(source: string, file: string): Promise<void> {
  const tmp = tempNameFor(file);
  try {
    try {
      await fs.copyFile(source, tmp, fsConstants.COPYFILE_EXCL);
    } catch (e) {
      throw new Error((e as NodeJS.ErrnoException).code === 'ENOENT' ? `missing ${source}` : `cannot copy ${source}: ${(e as Error).message}`);
    }
    const fh = await fs.open(tmp, fsConstants.O_RDONLY);
    try { await fh.sync(); } finally { await fh.close(); }
    await fs.rename(tmp, file);
    await fsyncDir(path.dirname(file));
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}
