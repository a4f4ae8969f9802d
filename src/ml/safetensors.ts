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

/** Parses and validates a safetensors file; every error names what is wrong. `what` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, what = 'safetensors file'): DecodedSafetensors {
  assertLittleEndian();
  if (bytes.length < 8) throw new Error(`${what}: truncated (${bytes.length} bytes, no header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8 || headerLen > 100_000_000) {
    throw new Error(`${what}: header length ${headerLen} exceeds the file size ${bytes.length}: truncated or not a safetensors file`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${what}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${what}: header is not a JSON object`);
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info.dtype as SafeDType;
    if (typeof dtype !== 'string' || !(dtype in BYTES)) throw new Error(`${what}: tensor ${name} has unsupported dtype ${String(info.dtype)}`);
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${what}: tensor ${name} has an invalid shape`);
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${what}: tensor ${name} has invalid data_offsets`);
    const [begin, end] = offs as [number, number];
    const shape = info.shape as number[];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * BYTES[dtype]) throw new Error(`${what}: tensor ${name} byte size ${end - begin} does not match shape [${shape.join(', ')}] of ${dtype}`);
    if (end > dataLen) throw new Error(`${what}: tensor ${name} ends at byte ${end} but the data section has ${dataLen} bytes: the file is truncated`);
    // Copy into an aligned buffer: the data section need not be aligned within the caller's bytes.
    // (Uint8Array.prototype.slice explicitly: Node's Buffer#slice would return a view, not a copy.)
    const copy = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    const buf = copy.buffer;
    let data: SafeTensor['data'];
    switch (dtype) {
      case 'F32': data = new Float32Array(buf); break;
      case 'I32': data = new Int32Array(buf); break;
      case 'U16': data = new Uint16Array(buf); break;
      case 'F64': data = new Float64Array(buf); break;
      case 'I64': data = new BigInt64Array(buf); break;
      case 'U8': data = new Uint8Array(buf); break;
    }
    tensors.set(name, { dtype, shape, data });
  }
  return { tensors, metadata };
}

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('safetensors: big-endian hosts are not supported');
}
