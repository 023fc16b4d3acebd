/**
 * `loadTokenizer(dir)`: the tokenizer a model folder holds.
 *
 *   vocab.json       → Quorum's `Tokenizer` (a model trained from scratch by Quorum)
 *   tokenizer.json   → `HfTokenizer` (a Hugging Face folder; tokenizer_config.json and
 *                      special_tokens_map.json are read when present, and quorum-tokenizer.json, the
 *                      options a saved tokenizer was read with, see `HF_TOKENIZER_OPTIONS_FILE`)
 *
 * A tokenizer's `files()` written to a folder load back as the same tokenizer (the same id).
 *
 * The folder is untrusted input: a file is read only when it is a regular file inside the folder (a
 * symlink must resolve inside it too), its size is checked before reading, and bad JSON is a `DataError`
 * naming the file.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  CheckpointError,
  DataError,
  escapeUntrusted,
  printable,
  readConfinedBytes,
  statConfinedFile,
} from '@quorum/core';
import { HF_TOKENIZER_OPTIONS_FILE, type HfPromptFormatChoice, HfTokenizer } from './hf-tokenizer.js';
import { Tokenizer } from './tokenizer.js';
import { Vocab } from './vocab.js';

/** Largest file each name may be (bytes); larger ones are refused before they are read. */
export const TOKENIZER_FILE_LIMITS: Readonly<Record<string, number>> = {
  'tokenizer.json': 64 * 1024 * 1024,
  'tokenizer_config.json': 16 * 1024 * 1024,
  'special_tokens_map.json': 1024 * 1024,
  'vocab.json': 16 * 1024 * 1024,
  [HF_TOKENIZER_OPTIONS_FILE]: 64 * 1024,
};

export interface LoadTokenizerOptions {
  /**
   * The model's vocabulary size (config.json's `vocab_size`, or a Quorum manifest's `vocab.size`): a
   * tokenizer whose ids do not fit is an error naming both numbers. Default for a Hugging Face folder:
   * quorum-tokenizer.json's when it has one.
   */
  readonly vocabSize?: number | undefined;
  /**
   * For a Hugging Face folder: which prompt layout (default: quorum-tokenizer.json's when the folder has
   * one, else `auto`: its chat template when it has one).
   */
  readonly promptFormat?: HfPromptFormatChoice | undefined;
  /** For a Hugging Face folder: receives its notes (pad falling back to eos, …); default console.warn. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

/** Reads `name` of the folder as text through @quorum/core's confined reads, or undefined when absent. */
async function readFolderText(dir: string, name: string, limit: number): Promise<string | undefined> {
  const file = await statConfinedFile(dir, name, { maxBytes: limit });
  if (file === undefined) return undefined;
  return new TextDecoder().decode(await readConfinedBytes(file));
}

/** JSON of a tokenizer file; bad JSON is a DataError naming the file, never quoting it. */
function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    const at = /position (\d+)/.exec((cause as Error).message)?.[1];
    throw new DataError(
      `is not valid JSON${at === undefined ? '' : ` (error at character ${at} of ${text.length})`}`,
      {
        location: { file, field: 'json' },
        hint: 'the file is damaged; copy it again from the model',
      },
    );
  }
}

/** quorum-tokenizer.json: the options a saved Hugging Face tokenizer was read with. */
function parseReadOptions(
  text: string,
  file: string,
): { promptFormat?: HfPromptFormatChoice; vocabSize?: number } {
  const o = parseObject(text, file);
  const bad = (field: string, message: string): DataError =>
    new DataError(message, {
      location: { file, field },
      hint: 'Quorum writes this file when it saves a tokenizer; restore it from the checkpoint or delete it',
    });
  for (const key of Object.keys(o)) {
    if (key !== 'promptFormat' && key !== 'vocabSize')
      throw bad(escapeUntrusted(key), `unknown key ${printable(key)} (known: promptFormat, vocabSize)`);
  }
  const format = o.promptFormat;
  if (format !== undefined && format !== 'auto' && format !== 'chat-template' && format !== 'instruction')
    throw bad('promptFormat', `must be "auto", "chat-template" or "instruction", got ${printable(format)}`);
  const size = o.vocabSize;
  if (size !== undefined && !(typeof size === 'number' && Number.isSafeInteger(size) && size > 0))
    throw bad('vocabSize', `must be a positive integer, got ${printable(size)}`);
  return {
    ...(format === undefined ? {} : { promptFormat: format }),
    ...(size === undefined ? {} : { vocabSize: size as number }),
  };
}

function parseObject(text: string, file: string): Record<string, unknown> {
  const value = parseJson(text, file);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(`expected a JSON object, got ${printable(value)}`, {
      location: { file, field: 'json' },
      hint: 'the file is damaged; copy it again from the model',
    });
  }
  return value as Record<string, unknown>;
}

/**
 * The tokenizer of a model folder: `vocab.json` → Quorum's `Tokenizer`, else `tokenizer.json` →
 * `HfTokenizer`; a folder with neither is a `CheckpointError` naming it. See this file's header.
 */
export async function loadTokenizer(
  dir: string,
  options: LoadTokenizerOptions = {},
): Promise<Tokenizer | HfTokenizer> {
  try {
    if (!(await stat(await realpath(dir))).isDirectory()) throw new Error('not a directory');
  } catch (cause) {
    throw new CheckpointError('is not a model folder', {
      location: { file: dir },
      hint: 'pass the folder that holds vocab.json (a Quorum model) or tokenizer.json (a Hugging Face model)',
      cause,
    });
  }
  const read = (name: string): Promise<string | undefined> =>
    readFolderText(dir, name, TOKENIZER_FILE_LIMITS[name] ?? 1024 * 1024);

  const vocabText = await read('vocab.json');
  if (vocabText !== undefined) {
    const file = path.join(dir, 'vocab.json');
    const vocab = Vocab.fromJSON(parseJson(vocabText, file), file);
    if (options.vocabSize !== undefined && options.vocabSize !== vocab.size) {
      throw new DataError(`has ${vocab.size} ids, but the model's vocabulary size is ${options.vocabSize}`, {
        location: { file, field: 'tokens' },
        hint: 'the vocabulary belongs to another model: use the vocab.json saved with this model',
      });
    }
    return new Tokenizer(vocab);
  }
  const tokenizerJson = await read('tokenizer.json');
  if (tokenizerJson === undefined) {
    throw new CheckpointError(
      'has neither vocab.json (a Quorum model) nor tokenizer.json (a Hugging Face model)',
      {
        location: { file: dir },
        hint: 'pass a model folder; for a Hugging Face model download the whole folder (with tokenizer.json) first, e.g. `huggingface-cli download ORG/NAME --local-dir DIR`',
      },
    );
  }
  const configText = await read('tokenizer_config.json');
  const mapText = await read('special_tokens_map.json');
  const readText = await read(HF_TOKENIZER_OPTIONS_FILE);
  const saved =
    readText === undefined ? {} : parseReadOptions(readText, path.join(dir, HF_TOKENIZER_OPTIONS_FILE));
  return new HfTokenizer(
    {
      dir,
      tokenizerJson,
      tokenizerConfig:
        configText === undefined
          ? undefined
          : parseObject(configText, path.join(dir, 'tokenizer_config.json')),
      specialTokensMap:
        mapText === undefined ? undefined : parseObject(mapText, path.join(dir, 'special_tokens_map.json')),
      tokenizerConfigText: configText,
      specialTokensMapText: mapText,
    },
    {
      vocabSize: options.vocabSize ?? saved.vocabSize,
      promptFormat: options.promptFormat ?? saved.promptFormat,
      onWarning: options.onWarning,
    },
  );
}
