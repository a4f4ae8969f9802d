// Shared test helpers: comparisons with a clear failure message, small random tensors.
import assert from 'node:assert/strict';
import { Rng } from '../src/ml/rng';

/** max|a-b| / max|b|: relative to the tensor's scale, so near-zero entries do not dominate. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'length mismatch');
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= maxDiff)) maxDiff = d; // NaN-safe: a NaN difference becomes the max
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const e = relError(actual, expected);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(3)} exceeds ${tol}`);
}

export function randomArray(rng: Rng, n: number, scale = 1, ctor: Float64ArrayConstructor | Float32ArrayConstructor = Float64Array): Float64Array | Float32Array {
  const a = new ctor(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
