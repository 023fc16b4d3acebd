/**
 * Property tests of the safetensors reader (issue 9, bad input): random and mutated byte strings give
 * either a valid decode or a CheckpointError naming the file — never another exception or a hang.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../errors.js';
import {
  allocateData,
  dtypeBytes,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  type TensorRecord,
} from './dtypes.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

const FILE = 'fuzz.safetensors';

/** Decodes `bytes`; a CheckpointError naming the file is fine, anything else fails the property. */
function decodeOrCheckpointError(bytes: Uint8Array): void {
  try {
    const { tensors } = decodeSafetensors(bytes, FILE);
    // A successful decode is self-consistent.
    for (const rec of Object.values(tensors)) {
      expect(rec.data.length).toBe(rec.shape.reduce((a, b) => a * b, 1));
    }
  } catch (err) {
    if (!(err instanceof CheckpointError)) throw err;
    expect(err.message.startsWith(FILE)).toBe(true);
  }
}

const dtypeArb = fc.constantFrom(...SAFETENSORS_DTYPES);

/** A random valid record: random bytes reinterpreted as `dtype` (BOOL bytes kept to 0/1). */
const recordArb: fc.Arbitrary<TensorRecord> = fc
  .tuple(dtypeArb, fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }))
  .chain(([dtype, shape]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    return fc
      .uint8Array({ minLength: count * dtypeBytes(dtype), maxLength: count * dtypeBytes(dtype) })
      .map((raw) => {
        const data = allocateData(dtype as SafetensorsDType, count);
        const target = new Uint8Array(data.buffer);
        target.set(dtype === 'BOOL' ? raw.map((b) => b & 1) : raw);
        return { dtype, shape, data };
      });
  });

const filesArb = fc.record({
  tensors: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 6 }).filter((s) => s !== '__metadata__'),
    recordArb,
    {
      maxKeys: 4,
    },
  ),
  metadata: fc.option(
    fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    {
      nil: undefined,
    },
  ),
});

describe('safetensors reader under random input', () => {
  it('round-trips random valid files exactly', () => {
    fc.assert(
      fc.property(filesArb, ({ tensors, metadata }) => {
        const decoded = decodeSafetensors(encodeSafetensors(tensors, metadata), FILE);
        expect(decoded.metadata).toEqual(metadata ?? {});
        expect(Object.keys(decoded.tensors).sort()).toEqual(Object.keys(tensors).sort());
        for (const [name, rec] of Object.entries(tensors)) {
          const got = decoded.tensors[name];
          expect(got.dtype).toBe(rec.dtype);
          expect(got.shape).toEqual(rec.shape);
          expect(new Uint8Array(got.data.buffer)).toEqual(new Uint8Array(rec.data.buffer));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('random byte strings: a decode or a CheckpointError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => decodeOrCheckpointError(bytes)),
      { numRuns: 1000 },
    );
  });

  it('random length prefixes in front of random bytes: a decode or a CheckpointError', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.uint8Array({ maxLength: 64 }),
        (n, rest) => {
          const bytes = new Uint8Array(8 + rest.length);
          new DataView(bytes.buffer).setBigUint64(0, n, true);
          bytes.set(rest, 8);
          decodeOrCheckpointError(bytes);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('mutated valid files (flipped bytes, truncation, insertion): a decode or a CheckpointError', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
      }),
      fc.record({
        kind: fc.constant('text' as const),
        at: fc.nat(),
        text: fc.constantFrom(
          '-1',
          '1e9',
          '"x"',
          'null',
          '[',
          '}',
          ',',
          '9007199254740993',
          '0.5',
          '\\u0000',
        ),
      }),
    );
    fc.assert(
      fc.property(
        filesArb,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        ({ tensors, metadata }, mutations) => {
          let bytes = encodeSafetensors(tensors, metadata);
          for (const m of mutations) {
            const at = bytes.length === 0 ? 0 : m.at % bytes.length;
            if (m.kind === 'flip' && bytes.length > 0) {
              bytes = bytes.slice();
              bytes[at] ^= m.xor;
            } else if (m.kind === 'truncate') {
              bytes = bytes.subarray(0, at);
            } else if (m.kind === 'insert' || m.kind === 'text') {
              const extra = m.kind === 'insert' ? m.bytes : new TextEncoder().encode(m.text);
              const out = new Uint8Array(bytes.length + extra.length);
              out.set(bytes.subarray(0, at));
              out.set(extra, at);
              out.set(bytes.subarray(at), at + extra.length);
              // Keep the length prefix consistent half the time, so mutations reach the JSON checks.
              if (m.kind === 'text' && at >= 8 && out.length >= 8) {
                const view = new DataView(out.buffer);
                view.setBigUint64(0, view.getBigUint64(0, true) + BigInt(extra.length), true);
              }
              bytes = out;
            }
          }
          decodeOrCheckpointError(bytes);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('random JSON headers: a decode or a CheckpointError', () => {
    const entry = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.record({
        dtype: fc.oneof(dtypeArb, fc.jsonValue({ maxDepth: 1 })),
        shape: fc.oneof(
          fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 3 }),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        data_offsets: fc.oneof(
          fc.tuple(fc.integer({ min: -4, max: 40 }), fc.integer({ min: -4, max: 40 })),
          fc.jsonValue({ maxDepth: 1 }),
        ),
      }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant('__metadata__')), entry, {
          maxKeys: 4,
        }),
        fc.uint8Array({ maxLength: 40 }),
        (header, data) => {
          const json = new TextEncoder().encode(JSON.stringify(header));
          const bytes = new Uint8Array(8 + json.length + data.length);
          new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
          bytes.set(json, 8);
          bytes.set(data, 8 + json.length);
          decodeOrCheckpointError(bytes);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
