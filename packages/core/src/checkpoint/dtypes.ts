/**
 * safetensors element types, the typed arrays that hold them, and exact float16 / bfloat16 ↔ float32
 * conversion (round to nearest, ties to even; inf, NaN, signed zero and subnormals kept).
 */

/** The element types Quorum reads and writes. F16 and BF16 data are the raw 16-bit patterns. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array each dtype is held in (F16/BF16: raw bits in a Uint16Array; BOOL: 0/1 bytes). */
export interface DTypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type TensorData = DTypeArrays[SafetensorsDType];

/** One tensor as stored in a safetensors file: row-major `data` of `product(shape)` elements. */
export interface TensorRecord {
  dtype: SafetensorsDType;
  shape: number[];
  data: TensorData;
}

interface DTypeInfo {
  readonly bytes: number;
  readonly ctor: { new (length: number): TensorData; readonly name: string };
}

const DTYPES: Readonly<Record<SafetensorsDType, DTypeInfo>> = {
  F64: { bytes: 8, ctor: Float64Array },
  F32: { bytes: 4, ctor: Float32Array },
  F16: { bytes: 2, ctor: Uint16Array },
  BF16: { bytes: 2, ctor: Uint16Array },
  I64: { bytes: 8, ctor: BigInt64Array },
  I32: { bytes: 4, ctor: Int32Array },
  I16: { bytes: 2, ctor: Int16Array },
  I8: { bytes: 1, ctor: Int8Array },
  U8: { bytes: 1, ctor: Uint8Array },
  BOOL: { bytes: 1, ctor: Uint8Array },
};

/** Every supported dtype, in the order error messages list them. */
export const SAFETENSORS_DTYPES: readonly SafetensorsDType[] = Object.keys(DTYPES) as SafetensorsDType[];

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

/** Bytes per element of `dtype`. */
export function dtypeBytes(dtype: SafetensorsDType): number {
  return DTYPES[dtype].bytes;
}

/** A zeroed typed array of `length` elements of the kind that holds `dtype`. */
export function allocateData<D extends SafetensorsDType>(dtype: D, length: number): DTypeArrays[D] {
  return new DTYPES[dtype].ctor(length) as DTypeArrays[D];
}

/** Whether `data` is the typed-array kind that holds `dtype` (e.g. Uint16Array for F16). */
export function dataMatchesDType(dtype: SafetensorsDType, data: unknown): boolean {
  return data instanceof DTYPES[dtype].ctor;
}

/** The name of the typed array `dtype` is held in, for error messages. */
export function dataKindFor(dtype: SafetensorsDType): string {
  return DTYPES[dtype].ctor.name;
}

// Scratch views to read and write float32 bit patterns.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float16 bits → the float32 value they denote (exact). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}

/**
 * A number → float16 bits, rounding the float32 value to nearest, ties to even. Too large → ±inf; too
 * small → ±0 or a subnormal; NaN → a quiet NaN keeping the top of the payload.
 */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant === 0 ? 0 : 0x200 | (mant >>> 13));
  const e = exp - 127 + 15; // the float16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A float16 subnormal (or zero): the value in units of 2^-24, rounded.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
    return sign | half; // a carry into 0x400 is the smallest normal, as it should be
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1; // a carry may reach inf: correct
  return sign | half;
}

/** bfloat16 bits → the float32 value they denote (exact). */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** A number → bfloat16 bits, rounding the float32 value to nearest, ties to even; NaN stays a quiet NaN. */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** float16 bits → float32 values. */
export function f16ArrayToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16ToF32(bits[i]);
  return out;
}

/** float32 values → float16 bits (round to nearest even). */
export function f32ArrayToF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16(values[i]);
  return out;
}

/** bfloat16 bits → float32 values. */
export function bf16ArrayToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return out;
}

/** float32 values → bfloat16 bits (round to nearest even). */
export function f32ArrayToBf16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToBf16(values[i]);
  return out;
}
