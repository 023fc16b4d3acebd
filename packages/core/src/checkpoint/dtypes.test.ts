import { describe, expect, it } from 'vitest';
import {
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
} from './dtypes.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The float32 next to `x` (as a float32 bit pattern step), toward +inf for positive `x` when dir = 1. */
function f32Step(x: number, dir: 1 | -1): number {
  f32[0] = x;
  u32[0] += dir;
  return f32[0];
}

describe('float16', () => {
  it('decodes the special patterns', () => {
    expect(f16ToF32(0x0000)).toBe(0);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(f16ToF32(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0xfc01)).toBeNaN();
  });

  it('round-trips every one of the 65536 bit patterns (NaNs stay NaN)', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = f16ToF32(bits);
      const back = f32ToF16(value);
      if (Number.isNaN(value)) {
        expect(Number.isNaN(f16ToF32(back))).toBe(true); // a JS number keeps no NaN sign or payload
      } else if (back !== bits) {
        expect.fail(`0x${bits.toString(16)} → ${value} → 0x${back.toString(16)}`);
      }
    }
  });

  it('rounds to nearest, ties to even, at every midpoint between neighbours', () => {
    for (let h = 0; h < 0x7c00; h++) {
      const lo = f16ToF32(h);
      const hi = h + 1 === 0x7c00 ? 65536 : f16ToF32(h + 1); // the step above the max rounds to inf
      const mid = (lo + hi) / 2; // exact in float32
      const even = (h & 1) === 0 ? h : h + 1;
      if (f32ToF16(mid) !== even)
        expect.fail(`midpoint ${mid} of 0x${h.toString(16)} gave 0x${f32ToF16(mid).toString(16)}`);
      if (f32ToF16(f32Step(mid, -1)) !== h)
        expect.fail(`just below midpoint ${mid} should give 0x${h.toString(16)}`);
      if (f32ToF16(f32Step(mid, 1)) !== h + 1)
        expect.fail(`just above midpoint ${mid} should give 0x${(h + 1).toString(16)}`);
      if (f32ToF16(-mid) !== (even | 0x8000)) expect.fail(`negative midpoint ${-mid}`);
    }
  });

  it('handles overflow, underflow and named edge cases', () => {
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // tie between 65504 (odd) and 65536 → even → inf
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(-1e6)).toBe(0xfc00);
    expect(f32ToF16(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal → 0
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 units → 2
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(f32ToF16(1e-10)).toBe(0x0000);
    expect(f32ToF16(-1e-10)).toBe(0x8000);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16(0.1)).toBe(0x2e66);
    expect(f32ToF16(Number.NaN) & 0x7e00).toBe(0x7e00);
    expect(f32ToF16(1.401298464324817e-45)).toBe(0); // float32 subnormal
  });

  it('converts arrays', () => {
    const bits = f32ArrayToF16([1, -2, 0.5, Number.POSITIVE_INFINITY]);
    expect([...bits]).toEqual([0x3c00, 0xc000, 0x3800, 0x7c00]);
    expect([...f16ArrayToF32(bits)]).toEqual([1, -2, 0.5, Number.POSITIVE_INFINITY]);
  });
});

describe('bfloat16', () => {
  it('decodes the special patterns', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
    expect(bf16ToF32(0x7f80)).toBe(Number.POSITIVE_INFINITY);
    expect(bf16ToF32(0xff80)).toBe(Number.NEGATIVE_INFINITY);
    expect(bf16ToF32(0x7fc0)).toBeNaN();
    expect(bf16ToF32(0x0001)).toBe(2 ** -133); // subnormal
  });

  it('round-trips every one of the 65536 bit patterns', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = bf16ToF32(bits);
      const back = f32ToBf16(value);
      if (Number.isNaN(value)) {
        expect(Number.isNaN(bf16ToF32(back))).toBe(true);
      } else if (back !== bits) {
        expect.fail(`0x${bits.toString(16)} → ${value} → 0x${back.toString(16)}`);
      }
    }
  });

  it('rounds to nearest, ties to even, at every midpoint between finite neighbours', () => {
    for (let h = 0; h < 0x7f7f; h++) {
      const mid = (bf16ToF32(h) + bf16ToF32(h + 1)) / 2;
      const even = (h & 1) === 0 ? h : h + 1;
      if (f32ToBf16(mid) !== even) expect.fail(`midpoint ${mid} of 0x${h.toString(16)}`);
      if (f32ToBf16(f32Step(mid, -1)) !== h) expect.fail(`just below midpoint ${mid}`);
      if (f32ToBf16(f32Step(mid, 1)) !== h + 1) expect.fail(`just above midpoint ${mid}`);
    }
  });

  it('handles overflow, NaN and named edge cases', () => {
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds up to inf
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16(Number.NEGATIVE_INFINITY)).toBe(0xff80);
    expect(f32ToBf16(-0)).toBe(0x8000);
    expect(f32ToBf16(1e-40)).toBe(0x0001); // float32 subnormal 0x000116c2 → 0x0001
    const nan = f32ToBf16(Number.NaN);
    expect(nan & 0x7f80).toBe(0x7f80);
    expect(nan & 0x7f).not.toBe(0); // stays NaN, never becomes inf
    f32[0] = 0;
    u32[0] = 0x7f800001; // a signalling NaN whose payload is only in the low bits
    expect(Number.isNaN(bf16ToF32(f32ToBf16(f32[0])))).toBe(true);
  });

  it('converts arrays', () => {
    const bits = f32ArrayToBf16([1, -2.5, Math.PI]);
    expect([...bits]).toEqual([0x3f80, 0xc020, 0x4049]);
    expect([...bf16ArrayToF32(bits)]).toEqual([1, -2.5, 3.140625]);
  });
});
