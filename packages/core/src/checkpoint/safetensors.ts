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
import { CheckpointError } from '../errors.js';
import { escapeUntrusted, printable } from '../printable.js';
import {
  type ConfinedFile,
  type ConfinedOptions,
  readConfinedBytes,
  requireConfinedFile,
  statFile,
} from './confined.js';
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

/** An untrusted header value for a message: escaped and clipped (a header is the file author's text). */
function preview(value: unknown): string {
  return printable(value, 60);
}

/** A tensor or metadata name from a header, for a message: escaped, so it cannot forge lines. */
function nameOf(name: string): string {
  return escapeUntrusted(name.length > 80 ? `${name.slice(0, 80)}…` : name);
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
    throw new CheckpointError(`tensor '${nameOf(name)}' ${what}`, {
      location: { file: source, field: nameOf(name) },
      hint,
    });
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

/** The length prefix: how many header bytes follow the first 8, checked against the bytes there are. */
function headerLengthOf(prefix: Uint8Array, totalBytes: number, source: string): number {
  const short = 'The file is truncated or not a safetensors file; write it again.';
  if (totalBytes < 8) {
    throw new CheckpointError(
      `file is ${totalBytes} bytes, shorter than the 8-byte header length that starts every safetensors file`,
      { location: { file: source }, hint: short },
    );
  }
  const declared = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(
      `header length is ${declared} bytes, over the ${MAX_HEADER_BYTES}-byte limit (the file has ${totalBytes} bytes)`,
      { location: { file: source }, hint: short },
    );
  }
  const headerLength = Number(declared);
  if (headerLength > totalBytes - 8) {
    throw new CheckpointError(
      `header length is ${headerLength} bytes but only ${totalBytes - 8} bytes follow the length prefix`,
      { location: { file: source }, hint: short },
    );
  }
  return headerLength;
}

/** The header's JSON object (never quoting the header in an error: it is the file author's text). */
function parseHeaderJson(headerBytes: Uint8Array, source: string): Record<string, unknown> {
  const short = 'The file is truncated or not a safetensors file; write it again.';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (err) {
    throw new CheckpointError(`header (${headerBytes.length} bytes) is not valid UTF-8`, {
      location: { file: source },
      hint: short,
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new CheckpointError(
      `header is not valid JSON${at === undefined ? '' : ` (error at character ${at} of ${text.length})`}`,
      { location: { file: source }, hint: short },
    );
  }
  if (!isPlainObject(json)) {
    throw new CheckpointError(`header is JSON ${preview(json)}, not an object of tensors`, {
      location: { file: source },
      hint: short,
    });
  }
  return json;
}

/** One tensor as the header describes it (offsets relative to the data after the header). */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** A checked header: every tensor's facts, the metadata, and where the data starts in the file. */
export interface SafetensorsHeader {
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly metadata: Record<string, string>;
  /** Byte offset of the data in the file (8 + header length). */
  readonly dataStart: number;
  /** The file's size, which the tensors cover exactly. */
  readonly fileBytes: number;
}

/**
 * Checks a parsed header against the file: every entry well-formed, the tensors tiling the data after
 * the header exactly (no overlap, no hole, nothing left over), metadata strings only.
 */
function checkHeader(
  header: Record<string, unknown>,
  dataStart: number,
  fileBytes: number,
  source: string,
): SafetensorsHeader {
  const bufferBytes = fileBytes - dataStart;
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
        throw new CheckpointError(`metadata value "${nameOf(key)}" is ${preview(value)}, not a string`, {
          location: { file: source, field: `${METADATA_KEY}.${nameOf(key)}` },
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
        `tensor '${nameOf(entry.name)}' (bytes ${entry.begin}..${entry.end}) overlaps tensor '${nameOf(previous?.name ?? '')}' (bytes ${previous?.begin}..${previous?.end})`,
        {
          location: { file: source, field: nameOf(entry.name) },
          hint: 'The header is corrupt; write the file again.',
        },
      );
    }
    if (entry.begin > expected) {
      throw new CheckpointError(
        `tensor '${nameOf(entry.name)}' starts at byte ${entry.begin}, leaving bytes ${expected}..${entry.begin} of the data unused`,
        {
          location: { file: source, field: nameOf(entry.name) },
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
  return { tensors: entries, metadata, dataStart, fileBytes };
}

/** Copies the tensors a checked header describes out of the file's bytes. */
function tensorsOf(
  header: SafetensorsHeader,
  bytes: Uint8Array,
  source: string,
): Record<string, TensorRecord> {
  const { dataStart } = header;
  const tensorEntries: [string, TensorRecord][] = [];
  for (const entry of header.tensors) {
    const data = allocateData(entry.dtype, elementCount(entry.shape));
    const target = bytesOf(data);
    target.set(bytes.subarray(dataStart + entry.begin, dataStart + entry.end));
    if (!LITTLE_ENDIAN_HOST) swapBytes(target, dtypeBytes(entry.dtype));
    if (entry.dtype === 'BOOL') {
      const bad = target.findIndex((b) => b > 1);
      if (bad >= 0) {
        throw new CheckpointError(
          `tensor '${nameOf(entry.name)}' is BOOL but element ${bad} holds byte ${target[bad]} (only 0 and 1 are booleans)`,
          {
            location: { file: source, field: nameOf(entry.name) },
            hint: 'The file is corrupt; write it again.',
          },
        );
      }
    }
    tensorEntries.push([entry.name, { dtype: entry.dtype, shape: [...entry.shape], data }]);
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays an ordinary entry.
  return Object.fromEntries(tensorEntries);
}

/**
 * Parses safetensors bytes strictly. `file` names the source in errors. The tensor data is copied into
 * fresh, aligned typed arrays (the header may leave offsets unaligned), so `bytes` can be reused.
 */
export function decodeSafetensors(bytes: Uint8Array, file?: string): SafetensorsContents {
  const source = file ?? DEFAULT_SOURCE;
  const headerLength = headerLengthOf(bytes, bytes.length, source);
  const json = parseHeaderJson(bytes.subarray(8, 8 + headerLength), source);
  const header = checkHeader(json, 8 + headerLength, bytes.length, source);
  return { tensors: tensorsOf(header, bytes, source), metadata: header.metadata };
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

/** Largest safetensors file `readSafetensors` reads without a `maxBytes` (64 GiB: any model Quorum runs). */
export const MAX_SAFETENSORS_BYTES = 64 * 1024 ** 3;

/**
 * Reads and checks the header of a located safetensors file alone: the length prefix and the header
 * bytes are the only bytes read. Every entry is checked and the tensors must cover the rest of the file
 * exactly, so the file's size is the one its header implies before any tensor data is read.
 */
export async function readSafetensorsHeader(file: ConfinedFile): Promise<SafetensorsHeader> {
  const prefix = file.bytes >= 8 ? await readConfinedBytes(file, 0, 8) : new Uint8Array(0);
  const headerLength = headerLengthOf(prefix, file.bytes, file.shown);
  const json = parseHeaderJson(await readConfinedBytes(file, 8, headerLength), file.shown);
  return checkHeader(json, 8 + headerLength, file.bytes, file.shown);
}

/** Options of `readConfinedSafetensors`. */
export interface ReadSafetensorsOptions extends ConfinedOptions {
  /** The dtypes every tensor must have (e.g. the float dtypes of weights); default any. */
  readonly dtypes?: readonly SafetensorsDType[] | undefined;
  /** Refuse NaN and ±Infinity in float tensors, naming the tensor (default true). */
  readonly finite?: boolean | undefined;
  /** Called with the checked header before the data is read; throw to refuse the file. */
  readonly checkHeader?: ((header: SafetensorsHeader) => void) | undefined;
}

/** Refuses a tensor of a dtype not in `dtypes`, naming it, before its data is read. */
export function checkTensorDTypes(
  header: SafetensorsHeader,
  dtypes: readonly SafetensorsDType[],
  source: string,
): void {
  for (const t of header.tensors) {
    if (!dtypes.includes(t.dtype)) {
      throw new CheckpointError(
        `tensor '${nameOf(t.name)}' has dtype ${t.dtype}; this checkpoint holds ${dtypes.join(', ')} tensors only`,
        {
          location: { file: source, field: nameOf(t.name) },
          hint: `store it as ${dtypes.join(' or ')}; the file was not written by this loader's writer`,
        },
      );
    }
  }
}

/**
 * Reads `name` inside the checkpoint folder `dir` strictly (see `confined.ts`): located, a regular
 * file of at most `maxBytes`, header checked against the file's size (and by `checkHeader`), dtypes
 * checked, and only then the data read and decoded; float tensors must be finite.
 */
export async function readConfinedSafetensors(
  dir: string,
  name: string,
  options: ReadSafetensorsOptions & { readonly missingHint?: string },
): Promise<SafetensorsContents> {
  const file = await requireConfinedFile(dir, name, options);
  const header = await readSafetensorsHeader(file);
  if (options.dtypes !== undefined) checkTensorDTypes(header, options.dtypes, file.shown);
  options.checkHeader?.(header);
  const bytes = await readConfinedBytes(file);
  const tensors = tensorsOf(header, bytes, file.shown);
  if (options.finite !== false) checkFiniteTensors(tensors, file.shown);
  return { tensors, metadata: header.metadata };
}

/**
 * Reads and strictly decodes a safetensors file; a missing or unreadable file is a CheckpointError.
 * The file must be a regular file (not a FIFO or a device) of at most `maxBytes` (default
 * `MAX_SAFETENSORS_BYTES`) whose size its header explains, checked before the data is read.
 */
export async function readSafetensors(
  file: string,
  options: { readonly maxBytes?: number } = {},
): Promise<SafetensorsContents> {
  const located = await statFile(file, { maxBytes: options.maxBytes ?? MAX_SAFETENSORS_BYTES });
  if (located === undefined) {
    throw new CheckpointError('file not found', {
      location: { file },
      hint: 'Check the path, or train/save the model first.',
    });
  }
  const header = await readSafetensorsHeader(located);
  return { tensors: tensorsOf(header, await readConfinedBytes(located), file), metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------
// Finite values
// ---------------------------------------------------------------------------------------------------

/** Index of the first NaN or ±Infinity of a float record, or -1 (integer dtypes are always finite). */
function firstNonFinite(record: TensorRecord): number {
  const { dtype, data } = record;
  if (dtype === 'F32' || dtype === 'F64') {
    const values = data as Float32Array | Float64Array;
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
    return -1;
  }
  if (dtype === 'F16' || dtype === 'BF16') {
    const exponent = dtype === 'F16' ? 0x7c00 : 0x7f80; // all-ones exponent: Inf or NaN
    const bits = data as Uint16Array;
    for (let i = 0; i < bits.length; i++) if ((bits[i] & exponent) === exponent) return i;
  }
  return -1;
}

/**
 * Refuses NaN and ±Infinity in float tensors (weights with them score every input as NaN), naming the
 * tensor and the first bad element. `file` names the source in the error.
 */
export function checkFiniteTensors(tensors: Record<string, TensorRecord>, file?: string): void {
  for (const [name, record] of Object.entries(tensors)) {
    const at = firstNonFinite(record);
    if (at < 0) continue;
    const value =
      record.dtype === 'F32' || record.dtype === 'F64' ? String(record.data[at]) : 'NaN or Infinity';
    throw new CheckpointError(
      `tensor '${nameOf(name)}' holds ${value} at element ${at}; weights must be finite numbers`,
      {
        location: { file: file ?? DEFAULT_SOURCE, field: nameOf(name) },
        hint: 'the model diverged before it was saved or the file is damaged; use an earlier checkpoint or retrain',
      },
    );
  }
}
