import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, safetensorsChunks, safetensorsHeaderLength } from '../src/ml/safetensors';

test('safetensors: round trip of several dtypes and metadata; data starts 8-byte aligned', () => {
  const tensors = [
    { name: 'a.weight', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 4, 5, 6]) },
    { name: 'ids', shape: [3], data: new Int32Array([7, -8, 9]) },
    { name: 'tokens', shape: [1], data: new Uint16Array([65535]) },
  ];
  const bytes = encodeSafetensors(tensors, { step: '12', note: 'é' });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLen) % 8, 0);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, { step: '12', note: 'é' });
  for (const t of tensors) {
    const got = back.tensors.get(t.name)!;
    assert.deepEqual(got.shape, t.shape);
    assert.deepEqual(Array.from(got.data as ArrayLike<number>), Array.from(t.data));
  }
  // The chunked form is the same bytes, and its tensor chunks are views (no copies).
  const chunks = safetensorsChunks(tensors, { step: '12', note: 'é' });
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(bytes));
  assert.equal(chunks[2]!.buffer, tensors[0]!.data.buffer);
});

test('safetensors: truncated or malformed files give errors that name the file', () => {
  const bytes = encodeSafetensors([{ name: 'w', shape: [4], data: new Float32Array(4) }]);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 1), 'm.safetensors'), /m\.safetensors: tensor w ends at byte 16 .* truncated/);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 5), 'm.safetensors'), /m\.safetensors: truncated/);
  const bad = Uint8Array.from(bytes);
  bad[8] = 0x7b + 1; // break the JSON
  assert.throws(() => decodeSafetensors(bad, 'm.safetensors'), /not valid JSON/);
  assert.throws(() => encodeSafetensors([{ name: 'w', shape: [3], data: new Float32Array(4) }]), /has 4 values but shape \[3\]/);
});

/** A safetensors file from a header object and a data section, as a hostile writer would make it. */
function rawFile(header: unknown, data: Uint8Array, headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

test('safetensors: aliased, overlapping, outside, gapped and trailing ranges are errors naming the file', () => {
  const data = new Uint8Array(32);
  const t = (begin: number, end: number, shape = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const cases: [string, unknown, Uint8Array, RegExp][] = [
    ['two names for the same bytes', { a: t(0, 16), b: t(0, 16), c: t(16, 32) }, data, /m\.safetensors: tensors a and b overlap/],
    ['overlapping', { a: t(0, 20), b: t(16, 32) }, data, /m\.safetensors: tensors a and b overlap/],
    ['outside the file', { a: t(0, 16), b: t(16, 48) }, data, /m\.safetensors: tensor b ends at byte 48 .* truncated/],
    ['a gap', { a: t(0, 8), b: t(16, 32) }, data, /m\.safetensors: bytes \[8, 16\) of the data section belong to no tensor/],
    ['trailing bytes', { a: t(0, 16) }, data, /m\.safetensors: 16 bytes after the last tensor/],
    ['end before begin', { a: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } }, data, /m\.safetensors: tensor a has invalid data_offsets/],
    ['a null entry', { a: null }, new Uint8Array(0), /m\.safetensors: tensor a is not described by an object/],
    ['an inherited dtype name', { a: { dtype: 'constructor', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(16), /m\.safetensors: tensor a has unsupported dtype constructor/],
    ['a huge shape', { a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 16] } }, new Uint8Array(16), /m\.safetensors: tensor a byte size 16 does not match shape/],
    ['metadata that is not strings', { __metadata__: { step: 3 }, a: t(0, 16) }, new Uint8Array(16), /m\.safetensors: __metadata__ must map strings to strings/],
  ];
  for (const [what, header, bytes, message] of cases) {
    assert.throws(() => decodeSafetensors(rawFile(header, bytes), 'm.safetensors'), message, what);
  }
});

test('safetensors: the header length is bounded (16 MB and the file size) before anything is parsed', () => {
  // A length field of 2^64 - 1, and one larger than the file.
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 0xffff_ffff_ffff_ffffn, true);
  assert.throws(() => decodeSafetensors(huge, 'm.safetensors'), /m\.safetensors: header length 18446744073709551615 exceeds the file size 16/);
  assert.throws(() => safetensorsHeaderLength(huge, 16, 'm.safetensors'), /exceeds the file size/);
  // Within the file but above the limit: refused without parsing 17 MB of "JSON".
  const big = new Uint8Array(8 + (17 << 20));
  new DataView(big.buffer).setBigUint64(0, BigInt(17 << 20), true);
  big.fill(0x20, 8);
  big[8] = 0x7b; big[big.length - 1] = 0x7d; // "{   ...   }": valid JSON, an empty header
  assert.throws(() => decodeSafetensors(big, 'm.safetensors'), new RegExp(`m\\.safetensors: header length ${17 << 20} exceeds the ${MAX_HEADER_BYTES}-byte limit`));
});

test('safetensors: `only` decodes just the named tensors; a missing or an extra tensor is an error naming it', () => {
  const bytes = encodeSafetensors([
    { name: 'w', shape: [2], data: new Float32Array([1, 2]) },
    { name: 'b', shape: [1], data: new Float32Array([3]) },
  ]);
  const got = decodeSafetensors(bytes, 'm.safetensors', { only: ['w', 'b'] });
  assert.deepEqual([...got.tensors.keys()], ['w', 'b']);
  assert.throws(() => decodeSafetensors(bytes, 'm.safetensors', { only: ['w'] }), /m\.safetensors: unexpected tensor b /);
  assert.throws(() => decodeSafetensors(bytes, 'm.safetensors', { only: ['w', 'b', 'c'] }), /m\.safetensors: missing tensor c/);
  // A name with a newline stays on one line in the message.
  const odd = encodeSafetensors([{ name: 'w', shape: [1], data: new Float32Array(1) }, { name: 'evil\nname', shape: [1], data: new Float32Array(1) }]);
  assert.throws(() => decodeSafetensors(odd, 'm.safetensors', { only: ['w'] }), (e: Error) => !e.message.includes('\n') && e.message.includes('"evil\\nname"'));
});
