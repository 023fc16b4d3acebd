import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../errors.js';
import { bf16ToF32, f16ToF32, f32ArrayToBf16, f32ArrayToF16, type TensorRecord } from './dtypes.js';
import { writeFileAtomic, writeJsonAtomic } from './files.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from './safetensors.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** One record of every dtype, with edge values. */
function everyDType(): Record<string, TensorRecord> {
  return {
    f64: { dtype: 'F64', shape: [3], data: new Float64Array([1 / 3, -0, Number.MAX_VALUE]) },
    f32: {
      dtype: 'F32',
      shape: [2, 2],
      data: new Float32Array([1.5, -2, Number.POSITIVE_INFINITY, Number.NaN]),
    },
    f16: { dtype: 'F16', shape: [3], data: f32ArrayToF16([0.1, 65504, 2 ** -24]) },
    bf16: { dtype: 'BF16', shape: [1, 3], data: f32ArrayToBf16([Math.PI, -1e30, 1e-40]) },
    i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    i32: { dtype: 'I32', shape: [3], data: new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]) },
    i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
    i8: { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) },
    u8: { dtype: 'U8', shape: [2], data: new Uint8Array([0, 255]) },
    bool: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

/** A file from a raw header (object or text) and data bytes; `headerLength` overrides the prefix. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function decodeError(bytes: Uint8Array): CheckpointError {
  try {
    decodeSafetensors(bytes, 'model.safetensors');
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    const e = err as CheckpointError;
    expect(e.code).toBe('E_CHECKPOINT');
    expect(e.location?.file).toBe('model.safetensors');
    expect(e.message.startsWith('model.safetensors')).toBe(true);
    expect(e.hint).toBeTruthy();
    return e;
  }
  return expect.fail('decodeSafetensors accepted a malformed file');
}

const f32Entry = (begin: number, end: number, shape = [(end - begin) / 4]) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, end],
});

describe('encode / decode', () => {
  it('round-trips every dtype bit for bit, with metadata', () => {
    const records = everyDType();
    const metadata = { step: '12', config: '{"lr":0.001}', note: 'ünïcode ✓' };
    const bytes = encodeSafetensors(records, metadata);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const { tensors, metadata: meta } = decodeSafetensors(bytes);
    expect(meta).toEqual(metadata);
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(records).sort());
    for (const [name, rec] of Object.entries(records)) {
      const got = tensors[name];
      expect(got.dtype).toBe(rec.dtype);
      expect(got.shape).toEqual(rec.shape);
      expect(got.data.constructor).toBe(rec.data.constructor);
      const a = new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength);
      const b = new Uint8Array(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength);
      expect(a).toEqual(b);
    }
  });

  it('lays tensors out contiguously in sorted-name order and pads the header with spaces', () => {
    const bytes = encodeSafetensors({
      b: { dtype: 'I32', shape: [1], data: new Int32Array([2]) },
      a: { dtype: 'I32', shape: [1], data: new Int32Array([1]) },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}}',
    );
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    expect([...bytes.subarray(8 + n)]).toEqual([1, 0, 0, 0, 2, 0, 0, 0]);
  });

  it('reads unaligned tensor data into aligned typed arrays', () => {
    // Header of 9 bytes → data at byte 17; the file itself also starts at an odd offset in a bigger buffer.
    const data = new Uint8Array(new Float64Array([1.25, -7]).buffer);
    const file = craft({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, data);
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    const { tensors } = decodeSafetensors(big.subarray(3));
    expect(tensors.x.data.byteOffset % 8).toBe(0);
    expect([...(tensors.x.data as Float64Array)]).toEqual([1.25, -7]);
  });

  it('accepts an empty file of tensors and a zero-size tensor between others', () => {
    expect(decodeSafetensors(craft({})).tensors).toEqual({});
    const data = new Uint8Array(8);
    const { tensors } = decodeSafetensors(
      craft({ a: f32Entry(0, 4), z: f32Entry(4, 4, [0]), b: f32Entry(4, 8) }, data),
    );
    expect(tensors.z.shape).toEqual([0]);
  });

  it('keeps a tensor named __proto__ as an ordinary entry', () => {
    const { tensors } = decodeSafetensors(
      craft('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array([9])),
    );
    expect(Object.keys(tensors)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
    const bytes = encodeSafetensors(
      JSON.parse('{"__proto__":{"dtype":"U8","shape":[1],"data":null}}', (k, v) =>
        k === 'data' ? new Uint8Array([9]) : v,
      ),
      JSON.parse('{"__proto__":"m"}'),
    );
    const back = decodeSafetensors(bytes);
    expect(Object.keys(back.tensors)).toEqual(['__proto__']);
    expect(back.metadata).toEqual(JSON.parse('{"__proto__":"m"}'));
  });

  it('refuses inconsistent records when encoding', () => {
    expect(() =>
      encodeSafetensors(
        { w: { dtype: 'F16', shape: [2], data: new Float32Array(2) } },
        undefined,
        'out.safetensors',
      ),
    ).toThrow(
      /out.safetensors field "w": tensor 'w' is F16 but its data is a Float32Array[\s\S]*Uint16Array/,
    );
    expect(() =>
      encodeSafetensors({ w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(5) } }),
    ).toThrow(/tensor 'w' needs 6 elements \(F32 \[2, 3\]\) but its data has 5/);
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } })).toThrow(
      /shape \[-1\], not a list of non-negative integers/,
    );
    expect(() =>
      encodeSafetensors({ w: { dtype: 'F8' as 'F32', shape: [1], data: new Float32Array(1) } }),
    ).toThrow(/unknown dtype "F8"/);
    expect(() =>
      encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }),
    ).toThrow(/"__metadata__" is reserved/);
    expect(() => encodeSafetensors({}, { step: 3 as unknown as string })).toThrow(
      /metadata value "step" is number/,
    );
  });
});

describe('decode rejects malformed files with a clear message', () => {
  const data16 = new Uint8Array(16);
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
    [
      'header larger than the file',
      craft('{}', new Uint8Array(4), 1000n),
      /header length is 1000 bytes but only 6 bytes follow/,
    ],
    [
      'absurd header length',
      craft('{}', new Uint8Array(0), 2n ** 60n),
      /header length is 1152921504606846976 bytes, over the 100000000-byte limit/,
    ],
    [
      'header not UTF-8',
      craft('', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 4n),
      /header \(4 bytes\) is not valid UTF-8/,
    ],
    ['header not JSON', craft('{"a": '), /header is not valid JSON/],
    ['empty header', craft(''), /header is not valid JSON/],
    ['header a JSON array', craft('[1,2]'), /header is JSON \[1,2\], not an object of tensors/],
    ['header JSON null', craft('null'), /header is JSON null, not an object/],
    ['entry not an object', craft({ w: 3 }), /tensor 'w' has header entry 3, not an object/],
    [
      'unknown dtype',
      craft({ w: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /tensor 'w' has unknown dtype "F8_E4M3"[\s\S]*hint: Supported dtypes: F64, F32, F16, BF16, I64/,
    ],
    [
      'missing dtype',
      craft({ w: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /tensor 'w' has no dtype/,
    ],
    [
      'negative dim',
      craft({ w: f32Entry(0, 4, [-1]) }, new Uint8Array(4)),
      /tensor 'w' has shape \[-1\], not a list of non-negative integers/,
    ],
    ['fractional dim', craft({ w: f32Entry(0, 4, [1.5]) }, new Uint8Array(4)), /shape \[1.5\], not a list/],
    [
      'shape not a list',
      craft({ w: { dtype: 'F32', shape: '4', data_offsets: [0, 16] } }, data16),
      /shape "4", not a list/,
    ],
    [
      'shape missing',
      craft({ w: { dtype: 'F32', data_offsets: [0, 16] } }, data16),
      /tensor 'w' has shape undefined/,
    ],
    [
      'offsets of one number',
      craft({ w: { dtype: 'F32', shape: [4], data_offsets: [16] } }, data16),
      /tensor 'w' has data_offsets \[16\], not \[begin, end\]/,
    ],
    [
      'offsets reversed',
      craft({ w: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } }, data16),
      /data_offsets \[16,0\], not \[begin, end\] .*begin ≤ end/,
    ],
    [
      'negative offset',
      craft({ w: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, data16),
      /data_offsets \[-4,0\]/,
    ],
    [
      'offsets not integers',
      craft({ w: { dtype: 'F32', shape: [1], data_offsets: ['0', '4'] } }, data16),
      /data_offsets \["0","4"\]/,
    ],
    [
      'offsets out of range',
      craft({ w: f32Entry(0, 32) }, data16),
      /tensor 'w' has data_offsets \[0, 32\] past the end of the data \(16 bytes\)/,
    ],
    [
      'byte count ≠ shape',
      craft({ wte: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, data16),
      /tensor 'wte' needs 16 bytes \(F32 \[2, 2\]\) but its offsets give 12/,
    ],
    [
      'overlapping tensors',
      craft({ a: f32Entry(0, 8), b: f32Entry(4, 12), c: f32Entry(12, 16) }, data16),
      /tensor 'b' \(bytes 4..12\) overlaps tensor 'a' \(bytes 0..8\)/,
    ],
    [
      'a hole between tensors',
      craft({ a: f32Entry(0, 4), b: f32Entry(8, 16) }, data16),
      /tensor 'b' starts at byte 8, leaving bytes 4..8 of the data unused/,
    ],
    [
      'trailing bytes',
      craft({ a: f32Entry(0, 8) }, data16),
      /the tensors cover 8 bytes of data but the file holds 16 after the header/,
    ],
    ['data with no tensors', craft({}, new Uint8Array(3)), /cover 0 bytes of data but the file holds 3/],
    ['metadata not an object', craft({ __metadata__: 'x' }), /__metadata__ is "x", not an object of strings/],
    [
      'metadata value not a string',
      craft({ __metadata__: { step: 7 } }),
      /metadata value "step" is 7, not a string/,
    ],
    [
      'BOOL byte not 0/1',
      craft({ m: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, new Uint8Array([1, 2])),
      /tensor 'm' is BOOL but element 1 holds byte 2/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => {
      expect(decodeError(bytes).message).toMatch(message);
    });
  }

  it('names the tensor in the error location', () => {
    const err = decodeError(craft({ wte: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, data16));
    expect(err.location?.field).toBe('wte');
  });

  it('rejects every truncation of a valid file', () => {
    const bytes = encodeSafetensors(everyDType(), { a: 'b' });
    for (let n = 0; n < bytes.length; n++) decodeError(bytes.subarray(0, n));
  });
});

describe('spec fixture (tools/fixtures/make_safetensors_fixture.py)', () => {
  type Expected = {
    header_length: number;
    file_bytes: number;
    metadata: Record<string, string>;
    tensors: Record<
      string,
      {
        dtype: string;
        shape: number[];
        data_offsets: [number, number];
        values: (number | string)[];
        bits?: number[];
      }
    >;
  };
  const special: Record<string, number> = {
    NaN: Number.NaN,
    Infinity: Number.POSITIVE_INFINITY,
    '-Infinity': Number.NEGATIVE_INFINITY,
    '-0': -0,
  };

  it('decodes the Python-written file to the expected values', async () => {
    const bytes = await readFile(path.join(FIXTURES, 'spec.safetensors'));
    const expected = JSON.parse(
      await readFile(path.join(FIXTURES, 'spec.expected.json'), 'utf8'),
    ) as Expected;
    expect(bytes.length).toBe(expected.file_bytes);
    expect(Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))).toBe(
      expected.header_length,
    );
    const { tensors, metadata } = decodeSafetensors(bytes, 'spec.safetensors');
    expect(metadata).toEqual(expected.metadata);
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(expected.tensors).sort());
    for (const [name, want] of Object.entries(expected.tensors)) {
      const got = tensors[name];
      expect(got.dtype, name).toBe(want.dtype);
      expect(got.shape, name).toEqual(want.shape);
      if (want.bits !== undefined) expect([...(got.data as Uint16Array)], name).toEqual(want.bits);
      let values: unknown[];
      if (got.dtype === 'I64') values = [...(got.data as BigInt64Array)].map(String);
      else if (got.dtype === 'F16') values = [...(got.data as Uint16Array)].map((b) => f16ToF32(b));
      else if (got.dtype === 'BF16') values = [...(got.data as Uint16Array)].map((b) => bf16ToF32(b));
      else values = [...(got.data as Float32Array)];
      const wanted = want.values.map((v) => (typeof v === 'string' && got.dtype !== 'I64' ? special[v] : v));
      expect(values, name).toEqual(wanted);
      // -0 must stay -0 (toEqual treats +0 and -0 as different, so this is already checked).
    }
  });

  it('re-encodes the expected tensors to the same bytes, byte for byte', async () => {
    const bytes = new Uint8Array(await readFile(path.join(FIXTURES, 'spec.safetensors')));
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(encodeSafetensors(tensors, metadata)).toEqual(bytes);
  });
});

describe('files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'quorum-st-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes and reads a safetensors file, leaving no temp file', async () => {
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensors(file, everyDType(), { step: '1' });
    await writeSafetensors(
      file,
      { x: { dtype: 'I32', shape: [1], data: new Int32Array([5]) } },
      { step: '2' },
    );
    const { tensors, metadata } = await readSafetensors(file);
    expect(metadata).toEqual({ step: '2' });
    expect([...(tensors.x.data as Int32Array)]).toEqual([5]);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
  });

  it('names a missing file', async () => {
    const file = path.join(dir, 'nope.safetensors');
    await expect(readSafetensors(file)).rejects.toThrow(`${file}: file not found`);
  });

  it('names the file of a corrupt read', async () => {
    const file = path.join(dir, 'bad.safetensors');
    await writeFile(file, new Uint8Array(3));
    await expect(readSafetensors(file)).rejects.toThrow(`${file}: file is 3 bytes`);
  });

  it('writeFileAtomic replaces content and a failed write leaves nothing behind', async () => {
    const file = path.join(dir, 'a.txt');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, new Uint8Array([116, 119, 111]));
    expect(await readFile(file, 'utf8')).toBe('two');
    const missing = path.join(dir, 'no-such-folder', 'b.txt');
    await expect(writeFileAtomic(missing, 'x')).rejects.toThrow(CheckpointError);
    await expect(writeFileAtomic(missing, 'x')).rejects.toThrow(
      `${missing}: could not write the file: ENOENT`,
    );
    expect(await readdir(dir)).toEqual(['a.txt']);
  });

  it('writeJsonAtomic writes pretty JSON and refuses non-JSON values', async () => {
    const file = path.join(dir, 'state.json');
    await writeJsonAtomic(file, { step: 3, rng: [1, 2] });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ step: 3, rng: [1, 2] });
    await expect(writeJsonAtomic(file, undefined)).rejects.toThrow(/cannot write undefined as JSON/);
  });
});
