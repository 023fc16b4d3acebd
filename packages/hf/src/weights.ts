/**
 * The weights of a Hugging Face folder: `model.safetensors`, or the shards a sharded
 * `model.safetensors.index.json` lists in its `weight_map`. `indexHfWeights` reads only the headers (every
 * file located inside the folder, a regular file whose size is the one its header implies), so names,
 * shapes and dtypes can be checked before any tensor data is read; `readHfWeights` then reads the tensors
 * through @quorum/core's strict safetensors decoder.
 */
import { CheckpointError, decodeSafetensors, MAX_HEADER_BYTES, type TensorRecord } from '@quorum/core';
import { type FolderFile, locate, readBytes, readJson } from './files.js';

export const HF_WEIGHTS_FILE = 'model.safetensors';
export const HF_WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Element types a model's weights may have; each becomes float32. */
export const HF_WEIGHT_DTYPES = ['F32', 'F16', 'BF16'] as const;

/** One tensor as a header describes it. */
export interface HfTensorInfo {
  /** The file (as shown in errors) that holds it. */
  readonly file: string;
  readonly dtype: string;
  readonly shape: readonly number[];
}

export interface HfWeightIndex {
  /** Every weight file, as shown in errors. */
  readonly files: readonly string[];
  readonly tensors: ReadonlyMap<string, HfTensorInfo>;
  /** @internal the located files by shown name */
  readonly located: ReadonlyMap<string, FolderFile>;
}

const INDEX_LIMIT = 64 * 1024 * 1024;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a safetensors header alone and checks the file's size against it. */
async function readHeader(file: FolderFile): Promise<Record<string, { dtype: string; shape: number[] }>> {
  const corrupt = (message: string): CheckpointError =>
    new CheckpointError(message, {
      location: { file: file.shown },
      hint: 'the file is truncated or not a safetensors file; copy it again from the model',
    });
  if (file.bytes < 8) throw corrupt(`is ${file.bytes} bytes, shorter than a safetensors header`);
  const n = new DataView((await readBytes(file, 0, 8)).buffer).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, file.bytes - 8))) {
    throw corrupt(`declares a ${n}-byte header in a file of ${file.bytes} bytes`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(await readBytes(file, 8, Number(n))));
  } catch {
    throw corrupt('has a header that is not valid JSON');
  }
  if (!isPlainObject(header)) throw corrupt('has a header that is not a JSON object');
  const out: Record<string, { dtype: string; shape: number[] }> = {};
  let end = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const offsets = e?.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !Array.isArray(e.shape) ||
      typeof e.dtype !== 'string'
    ) {
      throw corrupt(`has a malformed header entry for tensor "${name}"`);
    }
    end = Math.max(end, Number(offsets[1]));
    out[name] = { dtype: e.dtype, shape: e.shape as number[] };
  }
  const expected = 8 + Number(n) + end;
  if (expected !== file.bytes) {
    throw corrupt(`is ${file.bytes} bytes but its header describes ${expected}`);
  }
  return out;
}

/** The weight files and every tensor's file, dtype and shape, from the headers only. */
export async function indexHfWeights(realDir: string, dir: string): Promise<HfWeightIndex> {
  const indexFile = await locate(realDir, dir, HF_WEIGHTS_INDEX_FILE, INDEX_LIMIT);
  let fileOf: Map<string, string> | undefined; // tensor → shard name, from the index
  let names: string[];
  if (indexFile !== undefined) {
    const json = await readJson(indexFile);
    const map = isPlainObject(json) ? json.weight_map : undefined;
    if (!isPlainObject(map) || Object.values(map).some((f) => typeof f !== 'string')) {
      throw new CheckpointError('has no "weight_map" of tensor names to file names', {
        location: { file: indexFile.shown, field: 'weight_map' },
        hint: 'the index is damaged; copy it again from the model',
      });
    }
    fileOf = new Map(Object.entries(map as Record<string, string>));
    names = [...new Set(fileOf.values())].sort();
  } else {
    names = [HF_WEIGHTS_FILE];
  }
  const located = new Map<string, FolderFile>();
  const tensors = new Map<string, HfTensorInfo>();
  for (const name of names) {
    const file = await locate(realDir, dir, name);
    if (file === undefined) {
      throw new CheckpointError(
        indexFile === undefined ? 'is missing' : `is missing (${HF_WEIGHTS_INDEX_FILE} lists it)`,
        {
          location: { file: `${dir}/${name}` },
          hint:
            indexFile === undefined
              ? 'Quorum reads safetensors weights (model.safetensors or a sharded model.safetensors.index.json); convert a pytorch_model.bin with transformers first'
              : 'download every shard of the model into the folder',
        },
      );
    }
    located.set(file.shown, file);
    for (const [tensor, info] of Object.entries(await readHeader(file))) {
      if (fileOf !== undefined && fileOf.get(tensor) !== name) continue; // the index decides
      tensors.set(tensor, { file: file.shown, dtype: info.dtype, shape: info.shape });
    }
  }
  for (const [tensor, name] of fileOf ?? []) {
    if (!tensors.has(tensor)) {
      throw new CheckpointError(`lists tensor "${tensor}" in ${name}, which does not hold it`, {
        location: { file: indexFile?.shown ?? dir, field: `weight_map.${tensor}` },
        hint: 'the index and the shards come from different downloads; download the model again',
      });
    }
  }
  return { files: [...located.keys()], tensors, located };
}

/** Reads the named tensors (each file once), as @quorum/core tensor records in their stored dtype. */
export async function readHfWeights(
  index: HfWeightIndex,
  names: readonly string[],
): Promise<Record<string, TensorRecord>> {
  const byFile = new Map<string, string[]>();
  for (const name of names) {
    const info = index.tensors.get(name);
    if (info === undefined) {
      throw new CheckpointError(`tensor "${name}" is in no weight file`, {
        location: { file: index.files.join(', '), field: name },
        hint: 'the weights belong to another model',
      });
    }
    byFile.set(info.file, [...(byFile.get(info.file) ?? []), name]);
  }
  const out: [string, TensorRecord][] = [];
  for (const [shown, wanted] of byFile) {
    const file = index.located.get(shown) as FolderFile;
    const { tensors } = decodeSafetensors(await readBytes(file), shown);
    for (const name of wanted) out.push([name, tensors[name] as TensorRecord]);
  }
  return Object.fromEntries(out);
}
