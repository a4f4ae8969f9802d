// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the
// raw little-endian tensor bytes. Pure: bytes in, bytes out; the caller does the file I/O.

export type SafeDType = 'F32' | 'I32' | 'U16' | 'F64' | 'I64' | 'U8';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Int32Array | Uint16Array | Float64Array | BigInt64Array | Uint8Array;
}

const BYTES: Record<SafeDType, number> = { F32: 4, I32: 4, U16: 2, F64: 8, I64: 8, U8: 1 };

function dtypeOf(data: SafeTensor['data']): SafeDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint16Array) return 'U16';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof BigInt64Array) return 'I64';
  return 'U8';
}

export interface NamedTensor { name: string; shape: number[]; data: SafeTensor['data'] }

/**
 * The file as a list of byte chunks (header, then each tensor's bytes as a view, not a copy), so
 * a caller can stream a checkpoint to disk without a second copy of every weight in memory.
 */
export function safetensorsChunks(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array[] {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: ${t.name} has ${t.data.length} values but shape [${t.shape.join(', ')}]`);
    const dtype = dtypeOf(t.data);
    const nbytes = count * BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  const json = JSON.stringify(header);
  const unpadded = new TextEncoder().encode(json).length;
  const headerBytes = new TextEncoder().encode(json + ' '.repeat((8 - (unpadded % 8)) % 8));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  return [len, headerBytes, ...tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))];
}

/** Serialises tensors in the given order into one buffer. Little-endian hosts only (checked). */
export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const chunks = safetensorsChunks(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

export interface DecodedSafetensors {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/**
 * Largest header this reader parses. A header lists each tensor's name, dtype, shape and offsets
 * (~100 bytes a tensor): 16 MB is ~150K tensors, far beyond any GPT-2 (ours has 12 per layer).
 * Bounding it first keeps a hostile length field from making the reader allocate gigabytes.
 */
export const MAX_HEADER_BYTES = 16 << 20;

/** One tensor of a header: byte range [begin, end) relative to the start of the data section. */
export interface TensorEntry { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }

export interface SafetensorsHeader {
  /** Bytes of JSON after the 8-byte length. */
  headerLength: number;
  /** Offset of the data section in the file (8 + headerLength). */
  dataStart: number;
  /** In the header's order. */
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The header length in the first 8 bytes of a file of `fileSize` bytes, checked against the file size and MAX_HEADER_BYTES. */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, what = 'safetensors file'): number {
  if (fileSize < 8 || first8.length < 8) throw new Error(`${what}: truncated (${fileSize} bytes, no header)`);
  const len = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (len > BigInt(fileSize - 8)) {
    throw new Error(`${what}: header length ${len} exceeds the file size ${fileSize}: truncated or not a safetensors file`);
  }
  if (len > BigInt(MAX_HEADER_BYTES)) throw new Error(`${what}: header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte limit: not a model this reader loads`);
  return Number(len);
}

/**
 * Parses and validates the header of a safetensors file of `fileSize` bytes from its first bytes
 * (`bytes` must hold at least 8 + the header length; the data need not be there). Every tensor's
 * dtype, shape and range is checked; the ranges must tile the data section exactly, as the
 * reference implementation demands: no range outside the file, no two overlapping (aliased)
 * tensors, no gap, nothing after the last. Errors name `what` (the file) and the tensor.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, what = 'safetensors file'): SafetensorsHeader {
  const headerLength = safetensorsHeaderLength(bytes, fileSize, what);
  if (bytes.length < 8 + headerLength) throw new Error(`${what}: the header (${headerLength} bytes) was not read whole`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    // V8 quotes the text around a syntax error: keep the file's content out of the message.
    const m = (e as Error).message.replace(/\s+/g, ' ');
    throw new Error(`${what}: header is not valid JSON (${/"|is not valid JSON$/.test(m) ? 'syntax error' : m.slice(0, 200)})`);
  }
  if (!isRecord(header)) throw new Error(`${what}: header is not a JSON object`);
  const dataStart = 8 + headerLength;
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const shown = showName;
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (raw === null) continue;
      if (!isRecord(raw) || !Object.values(raw).every((v) => typeof v === 'string')) throw new Error(`${what}: __metadata__ must map strings to strings`);
      metadata = raw as Record<string, string>;
      continue;
    }
    if (!isRecord(raw)) throw new Error(`${what}: tensor ${shown(name)} is not described by an object`);
    const dtype = raw['dtype'];
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(BYTES, dtype)) {
      throw new Error(`${what}: tensor ${shown(name)} has unsupported dtype ${typeof dtype === 'string' ? shown(dtype) : typeof dtype}`);
    }
    const shape = raw['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${what}: tensor ${shown(name)} has an invalid shape`);
    const offs = raw['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1]) {
      throw new Error(`${what}: tensor ${shown(name)} has invalid data_offsets`);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLen) throw new Error(`${what}: tensor ${shown(name)} ends at byte ${end} but the data section has ${dataLen} bytes: the file is truncated`);
    // The element count, stopped as soon as it cannot fit the file (no float overflow games).
    let count = 1;
    for (const d of shape as number[]) {
      count *= d;
      if (count > dataLen) break;
    }
    const size = BYTES[dtype as SafeDType];
    if (end - begin !== count * size) {
      throw new Error(`${what}: tensor ${shown(name)} byte size ${end - begin} does not match shape [${(shape as number[]).join(', ')}] of ${dtype}`);
    }
    tensors.set(name, { name, dtype: dtype as SafeDType, shape: (shape as number[]).slice(), begin, end });
  }
  // The ranges, in file order, must tile [0, dataLen): anything else aliases one tensor's bytes
  // as another's, or hides bytes no tensor accounts for.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorEntry | null = null;
  for (const t of sorted) {
    if (t.begin < pos) throw new Error(`${what}: tensors ${shown(prev!.name)} and ${shown(t.name)} overlap (bytes [${prev!.begin}, ${prev!.end}) and [${t.begin}, ${t.end})): not a valid safetensors file`);
    if (t.begin > pos) throw new Error(`${what}: bytes [${pos}, ${t.begin}) of the data section belong to no tensor: not a valid safetensors file`);
    pos = t.end;
    if (t.end > t.begin) prev = t;
  }
  if (pos !== dataLen) throw new Error(`${what}: ${dataLen - pos} bytes after the last tensor belong to no tensor: not a valid safetensors file`);
  return { headerLength, dataStart, tensors, metadata };
}

/** A copy of one tensor's bytes as a typed array (aligned: the data section need not be aligned within the caller's bytes). */
export function tensorData(bytes: Uint8Array, header: SafetensorsHeader, t: TensorEntry): SafeTensor['data'] {
  // Uint8Array.prototype.slice explicitly: Node's Buffer#slice would return a view, not a copy.
  const buf = Uint8Array.prototype.slice.call(bytes, header.dataStart + t.begin, header.dataStart + t.end).buffer;
  switch (t.dtype) {
    case 'F32': return new Float32Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'U16': return new Uint16Array(buf);
    case 'F64': return new Float64Array(buf);
    case 'I64': return new BigInt64Array(buf);
    case 'U8': return new Uint8Array(buf);
  }
}

export interface DecodeOptions {
  /**
   * Decode only these tensors: each must be in the file, and any other tensor in the file is an
   * error naming it (a model file holds its model and nothing else). Default: every tensor.
   */
  only?: readonly string[];
}

/** Parses and validates a safetensors file; every error names what is wrong. `what` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, what = 'safetensors file', opts: DecodeOptions = {}): DecodedSafetensors {
  assertLittleEndian();
  const header = parseSafetensorsHeader(bytes, bytes.length, what);
  let names: readonly string[] = [...header.tensors.keys()];
  if (opts.only !== undefined) {
    const missing = opts.only.filter((n) => !header.tensors.has(n));
    if (missing.length > 0) throw new Error(`${what}: missing tensor${missing.length > 1 ? 's' : ''} ${listNames(missing)}`);
    const wanted = new Set(opts.only);
    const extra = names.filter((n) => !wanted.has(n));
    if (extra.length > 0) throw unexpectedTensors(what, extra);
    names = opts.only;
  }
  const tensors = new Map<string, SafeTensor>();
  for (const name of names) {
    const t = header.tensors.get(name)!;
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data: tensorData(bytes, header, t) });
  }
  return { tensors, metadata: header.metadata };
}

/** A tensor name for an error message: as it is when plain, else quoted and cut (a name could be anything, newlines included). */
function showName(name: string): string {
  return /^[\w.\-/:]{1,200}$/.test(name) ? name : JSON.stringify(name.length > 80 ? name.slice(0, 80) + '…' : name);
}

/** At most 5 names, then how many more. */
export function listNames(names: readonly string[]): string {
  return names.slice(0, 5).map(showName).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
}

/** The error for tensors a file must not have. */
export function unexpectedTensors(what: string, names: readonly string[]): Error {
  return new Error(`${what}: unexpected tensor${names.length > 1 ? 's' : ''} ${listNames(names)} (not part of this model): refusing a file with extra data`);
}

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('safetensors: big-endian hosts are not supported');
}
