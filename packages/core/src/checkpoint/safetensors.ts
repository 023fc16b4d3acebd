/**
 * The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian u64 header
 * length N, N bytes of UTF-8 JSON, then the tensor bytes. The JSON maps each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the byte buffer after the header)
 * plus an optional `__metadata__` string → string map.
 *
 * Writing: header padded with spaces to a multiple of 8, tensors in sorted-name order, little-endian,
 * contiguous. Reading is strict: every header fact is checked against the file before a byte is
 * copied, and each problem is a CheckpointError naming the file and tensor — never a crash or a
 * silent partial read.
 */
import { readFile } from 'node:fs/promises';
import { CheckpointError } from '../errors.js';
import {
  allocateData,
  dataKindFor,
  dataMatchesDType,
  dtypeBytes,
  isSafetensorsDType,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  type TensorData,
  type TensorRecord,
} from './dtypes.js';
import { writeFileAtomic } from './files.js';

/** What `decodeSafetensors` returns. */
export interface SafetensorsContents {
  tensors: Record<string, TensorRecord>;
  metadata: Record<string, string>;
}

/** Headers larger than this are refused as corrupt (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const DEFAULT_SOURCE = '<safetensors bytes>';
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of every element in place (only needed on big-endian hosts). */
function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i < bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function describeShape(dtype: string, shape: readonly number[]): string {
  return `${dtype} [${shape.join(', ')}]`;
}

function elementCount(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function preview(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  text ??= String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// ---------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------

/**
 * Serialises `tensors` (and optional string metadata) to safetensors bytes. Throws CheckpointError
 * when a record is inconsistent (data kind or length not matching dtype and shape).
 */
export function encodeSafetensors(
  tensors: Record<string, TensorRecord>,
  metadata?: Record<string, string>,
  file?: string,
): Uint8Array {
  const source = file ?? DEFAULT_SOURCE;
  // Entries, not assignments: a name like "__proto__" must stay an ordinary key.
  const header: [string, unknown][] = [];
  if (metadata !== undefined) {
    const meta: [string, string][] = [];
    for (const key of Object.keys(metadata).sort()) {
      const value = metadata[key];
      if (typeof value !== 'string') {
        throw new CheckpointError(`metadata value "${key}" is ${typeof value}, not a string`, {
          location: { file: source, field: `${METADATA_KEY}.${key}` },
          hint: 'safetensors metadata maps strings to strings: JSON.stringify structured values first.',
        });
      }
      meta.push([key, value]);
    }
    header.push([METADATA_KEY, Object.fromEntries(meta)]);
  }
  const names = Object.keys(tensors).sort();
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) {
      throw new CheckpointError(`"${METADATA_KEY}" is reserved and cannot name a tensor`, {
        location: { file: source, field: name },
        hint: 'Rename the tensor; pass metadata as the second argument.',
      });
    }
    const { dtype, shape, data } = tensors[name];
    const where = { file: source, field: name };
    if (!isSafetensorsDType(dtype)) {
      throw new CheckpointError(`tensor '${name}' has unknown dtype ${preview(dtype)}`, {
        location: where,
        hint: `Use one of ${SAFETENSORS_DTYPES.join(', ')}.`,
      });
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(
        `tensor '${name}' has shape ${preview(shape)}, not a list of non-negative integers`,
        {
          location: where,
          hint: 'Give the shape as whole numbers ≥ 0, e.g. [32, 64].',
        },
      );
    }
    if (!dataMatchesDType(dtype, data)) {
      throw new CheckpointError(
        `tensor '${name}' is ${dtype} but its data is a ${(data as object)?.constructor?.name ?? typeof data}`,
        {
          location: where,
          hint: `Hold ${dtype} data in a ${dataKindFor(dtype)} (F16/BF16: the raw 16-bit patterns).`,
        },
      );
    }
    const count = elementCount(shape);
    if (data.length !== count) {
      throw new CheckpointError(
        `tensor '${name}' needs ${count} elements (${describeShape(dtype, shape)}) but its data has ${data.length}`,
        { location: where, hint: 'Make the shape and the data agree.' },
      );
    }
    const end = offset + data.byteLength;
    header.push([name, { dtype, shape: [...shape], data_offsets: [offset, end] }]);
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(header)));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of names) {
    const { dtype, data } = tensors[name];
    const raw = bytesOf(data);
    out.set(raw, at);
    if (!LITTLE_ENDIAN_HOST) swapBytes(out.subarray(at, at + raw.length), dtypeBytes(dtype));
    at += raw.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------

interface Entry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkEntry(name: string, value: unknown, bufferBytes: number, source: string): Entry {
  const fail = (what: string, hint: string): never => {
    throw new CheckpointError(`tensor '${name}' ${what}`, { location: { file: source, field: name }, hint });
  };
  const corrupt = 'The file is corrupt or was not written by a safetensors writer; write it again.';
  if (!isPlainObject(value)) return fail(`has header entry ${preview(value)}, not an object`, corrupt);
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isSafetensorsDType(dtype)) {
    return fail(
      dtype === undefined ? 'has no dtype' : `has unknown dtype ${preview(dtype)}`,
      `Supported dtypes: ${SAFETENSORS_DTYPES.join(', ')}.`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return fail(`has shape ${preview(shape)}, not a list of non-negative integers`, corrupt);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    return fail(
      `has data_offsets ${preview(offsets)}, not [begin, end] with non-negative integers and begin ≤ end`,
      corrupt,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end > bufferBytes) {
    return fail(
      `has data_offsets [${begin}, ${end}] past the end of the data (${bufferBytes} bytes)`,
      'The file is truncated or its header is corrupt; write it again.',
    );
  }
  const count = elementCount(shape);
  const needed = count * dtypeBytes(dtype);
  if (needed !== end - begin) {
    return fail(
      `needs ${Number.isSafeInteger(needed) ? needed : 'more than 2^53'} bytes (${describeShape(dtype, shape)}) but its offsets give ${end - begin}`,
      corrupt,
    );
  }
  return { name, dtype, shape: [...shape], begin, end };
}

function decodeHeader(bytes: Uint8Array, source: string): { json: unknown; dataStart: number } {
  const short = 'The file is truncated or not a safetensors file; write it again.';
  if (bytes.length < 8) {
    throw new CheckpointError(
      `file is ${bytes.length} bytes, shorter than the 8-byte header length that starts every safetensors file`,
      { location: { file: source }, hint: short },
    );
  }
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(
      `header length is ${declared} bytes, over the ${MAX_HEADER_BYTES}-byte limit (the file has ${bytes.length} bytes)`,
      { location: { file: source }, hint: short },
    );
  }
  const headerLength = Number(declared);
  if (headerLength > bytes.length - 8) {
    throw new CheckpointError(
      `header length is ${headerLength} bytes but only ${bytes.length - 8} bytes follow the length prefix`,
      { location: { file: source }, hint: short },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + headerLength),
    );
  } catch (err) {
    throw new CheckpointError(`header (${headerLength} bytes) is not valid UTF-8`, {
      location: { file: source },
      hint: short,
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`header is not valid JSON: ${(err as Error).message}`, {
      location: { file: source },
      hint: short,
      cause: err,
    });
  }
  if (!isPlainObject(json)) {
    throw new CheckpointError(`header is JSON ${preview(json)}, not an object of tensors`, {
      location: { file: source },
      hint: short,
    });
  }
  return { json, dataStart: 8 + headerLength };
}

/**
 * Parses safetensors bytes strictly. `file` names the source in errors. The tensor data is copied into
 * fresh, aligned typed arrays (the header may leave offsets unaligned), so `bytes` can be reused.
 */
export function decodeSafetensors(bytes: Uint8Array, file?: string): SafetensorsContents {
  const source = file ?? DEFAULT_SOURCE;
  const { json, dataStart } = decodeHeader(bytes, source);
  const bufferBytes = bytes.length - dataStart;
  const header = json as Record<string, unknown>;

  const metaEntries: [string, string][] = [];
  if (Object.hasOwn(header, METADATA_KEY)) {
    const meta = header[METADATA_KEY];
    if (!isPlainObject(meta)) {
      throw new CheckpointError(`${METADATA_KEY} is ${preview(meta)}, not an object of strings`, {
        location: { file: source, field: METADATA_KEY },
        hint: 'The file is corrupt or was written by a non-conforming writer; write it again.',
      });
    }
    for (const [key, value] of Object.entries(meta)) {
      if (typeof value !== 'string') {
        throw new CheckpointError(`metadata value "${key}" is ${preview(value)}, not a string`, {
          location: { file: source, field: `${METADATA_KEY}.${key}` },
          hint: 'safetensors metadata maps strings to strings; write the file again.',
        });
      }
      metaEntries.push([key, value]);
    }
  }
  const metadata: Record<string, string> = Object.fromEntries(metaEntries);

  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    entries.push(checkEntry(name, value, bufferBytes, source));
  }

  // The tensors must tile the data buffer exactly: no overlap, no hole, nothing left over.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: Entry | undefined;
  for (const entry of byOffset) {
    if (entry.begin < expected) {
      throw new CheckpointError(
        `tensor '${entry.name}' (bytes ${entry.begin}..${entry.end}) overlaps tensor '${previous?.name}' (bytes ${previous?.begin}..${previous?.end})`,
        {
          location: { file: source, field: entry.name },
          hint: 'The header is corrupt; write the file again.',
        },
      );
    }
    if (entry.begin > expected) {
      throw new CheckpointError(
        `tensor '${entry.name}' starts at byte ${entry.begin}, leaving bytes ${expected}..${entry.begin} of the data unused`,
        {
          location: { file: source, field: entry.name },
          hint: 'The header is corrupt (tensors must be contiguous); write the file again.',
        },
      );
    }
    expected = entry.end;
    previous = entry;
  }
  if (expected !== bufferBytes) {
    throw new CheckpointError(
      `the tensors cover ${expected} bytes of data but the file holds ${bufferBytes} after the header`,
      {
        location: { file: source },
        hint: 'The file has trailing bytes or a corrupt header; write it again.',
      },
    );
  }

  const tensorEntries: [string, TensorRecord][] = [];
  for (const entry of entries) {
    const data = allocateData(entry.dtype, elementCount(entry.shape));
    const target = bytesOf(data);
    target.set(bytes.subarray(dataStart + entry.begin, dataStart + entry.end));
    if (!LITTLE_ENDIAN_HOST) swapBytes(target, dtypeBytes(entry.dtype));
    if (entry.dtype === 'BOOL') {
      const bad = target.findIndex((b) => b > 1);
      if (bad >= 0) {
        throw new CheckpointError(
          `tensor '${entry.name}' is BOOL but element ${bad} holds byte ${target[bad]} (only 0 and 1 are booleans)`,
          { location: { file: source, field: entry.name }, hint: 'The file is corrupt; write it again.' },
        );
      }
    }
    tensorEntries.push([entry.name, { dtype: entry.dtype, shape: entry.shape, data }]);
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays an ordinary entry.
  return { tensors: Object.fromEntries(tensorEntries), metadata };
}

// ---------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------

/** Encodes and writes a safetensors file atomically (temp file, fsync, rename, fsync folder). */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, TensorRecord>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata, file));
}

/** Reads and strictly decodes a safetensors file; a missing or unreadable file is a CheckpointError. */
export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? 'file not found' : `could not read the file: ${code}`, {
      location: { file },
      hint:
        code === 'ENOENT' ? 'Check the path, or train/save the model first.' : 'Check the file permissions.',
      cause: err,
    });
  }
  return decodeSafetensors(bytes, file);
}
