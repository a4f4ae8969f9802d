import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSafetensors, encodeSafetensors, safetensorsChunks } from '../src/ml/safetensors';

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
