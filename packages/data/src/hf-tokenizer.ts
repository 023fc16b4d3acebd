/**
 * `HfTokenizer`: a Hugging Face model folder's tokenizer (`tokenizer.json` through
 * `@huggingface/tokenizers`, special tokens and `add_bos_token` from `tokenizer_config.json` /
 * `special_tokens_map.json`) as a `TextTokenizer`, and its prompt format:
 *
 * - with a `chat_template` (and `promptFormat` 'auto' or 'chat-template'): the template rendered by
 *   `@huggingface/jinja` for `[{role: 'user', content: prompt}, {role: 'assistant', content: answer}]`, as
 *   TRL does for conversational data (no BOS added: the template writes `bos_token` itself when the model
 *   wants one, as `apply_chat_template` tokenises with `add_special_tokens=False`);
 * - otherwise Quorum's `### Instruction:` template, after BOS when the tokenizer adds one (`add_bos_token`,
 *   or a post-processor that prepends it).
 *
 * The chat template is rendered once with placeholder contents and split around them into head, tail and
 * end text (see `chatTemplateFormat`). Files are read by `loadTokenizer` (load-tokenizer.ts); this class
 * takes their contents.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { DataError, describeValue } from '@quorum/core';
import { instructionFormat, type PromptFormat } from './template.js';
import type { DecodeOptions, TextTokenizer } from './tokenizer.js';
import type { Prompt } from './types.js';

/** Which prompt layout a Hugging Face model gets: `auto` = its chat template when it has one, else Quorum's. */
export type HfPromptFormatChoice = 'auto' | 'chat-template' | 'instruction';

/** The contents of a Hugging Face tokenizer folder (read and size-checked by `loadTokenizer`). */
export interface HfTokenizerFiles {
  /** The folder, for error messages. */
  readonly dir: string;
  /** `tokenizer.json` as text (its sha256 is part of the tokenizer id). */
  readonly tokenizerJson: string;
  /** Parsed `tokenizer_config.json`, when the folder has one. */
  readonly tokenizerConfig?: Readonly<Record<string, unknown>> | undefined;
  /** Parsed `special_tokens_map.json`, when the folder has one (used for tokens the config leaves out). */
  readonly specialTokensMap?: Readonly<Record<string, unknown>> | undefined;
  /** The text `tokenizerConfig` was parsed from: `files()` returns it byte for byte (else it re-serialises the object). */
  readonly tokenizerConfigText?: string | undefined;
  /** The text `specialTokensMap` was parsed from (as `tokenizerConfigText`). */
  readonly specialTokensMapText?: string | undefined;
}

/**
 * The file Quorum adds beside a Hugging Face tokenizer's own files when it was read with options that
 * change its id (`promptFormat: 'instruction'` over a chat template, a model `vocabSize` above the
 * tokenizer's ids): `{"promptFormat": …, "vocabSize": …}`, read back by `loadTokenizer`. Absent otherwise,
 * so a saved folder holds exactly the model's files.
 */
export const HF_TOKENIZER_OPTIONS_FILE = 'quorum-tokenizer.json';

export interface HfTokenizerOptions {
  /** The model's `vocab_size` (config.json): tokenizer ids must fit in it, and `vocabSize` reports it. */
  readonly vocabSize?: number | undefined;
  /** Default `auto`. */
  readonly promptFormat?: HfPromptFormatChoice | undefined;
  /** Called once per note (pad falling back to eos, a generation prompt that differs); default console.warn. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

type SpecialName = 'bos' | 'eos' | 'pad' | 'unk';

const USER = '\u27e6quorum:user\u27e7';
const ASSISTANT = '\u27e6quorum:assistant\u27e7';

function fail(file: string, field: string, message: string, hint: string, cause?: unknown): DataError {
  return new DataError(message, {
    location: { file, field },
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A special-token entry as tokenizer_config.json writes it: a string, `{content}` (AddedToken), or null. */
function tokenString(value: unknown): string | undefined | null {
  if (value === undefined || value === null) return value as undefined | null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string')
    return (value as { content: string }).content;
  return null;
}

/**
 * A copy of `tokenizer.json` that puts no dummy-prefix space before a text (sentencepiece's `▁`): the
 * `Prepend` normalizer removed, Metaspace `prepend_scheme: never`, ByteLevel `add_prefix_space: false`.
 * `undefined` when the tokenizer adds no prefix (then continuations encode like texts).
 */
function withoutDummyPrefix(json: Record<string, unknown>): Record<string, unknown> | undefined {
  let changed = false;
  const normalizer = (n: unknown): unknown => {
    if (n === null || typeof n !== 'object') return n;
    const o = n as Record<string, unknown>;
    if (o.type === 'Prepend') {
      changed = true;
      return null;
    }
    if (o.type === 'Sequence' && Array.isArray(o.normalizers)) {
      const kept = o.normalizers.map(normalizer).filter((x) => x !== null);
      return { ...o, normalizers: kept };
    }
    return o;
  };
  const preTokenizer = (p: unknown): unknown => {
    if (p === null || typeof p !== 'object') return p;
    const o = p as Record<string, unknown>;
    if (o.type === 'Metaspace' && (o.prepend_scheme !== 'never' || o.add_prefix_space === true)) {
      changed = true;
      return { ...o, prepend_scheme: 'never', add_prefix_space: false };
    }
    if (o.type === 'ByteLevel' && o.add_prefix_space === true) {
      changed = true;
      return { ...o, add_prefix_space: false };
    }
    if (o.type === 'Sequence' && Array.isArray(o.pretokenizers))
      return { ...o, pretokenizers: o.pretokenizers.map(preTokenizer) };
    return o;
  };
  const copy = {
    ...json,
    normalizer: normalizer(json.normalizer),
    pre_tokenizer: preTokenizer(json.pre_tokenizer),
  };
  return changed ? copy : undefined;
}

export class HfTokenizer implements TextTokenizer {
  readonly id: string;
  readonly vocabSize: number;
  readonly padId: number;
  readonly eosId: number;
  readonly bosId: number | undefined;
  readonly unkId: number | undefined;
  /** The tokenizer puts BOS before a text (`add_bos_token`, or its post-processor does). */
  readonly addBos: boolean;
  /** The special-token strings (`</s>`, `<|im_end|>`, …) the chat template sees. */
  readonly specialTokens: Readonly<Partial<Record<SpecialName, string>>>;
  readonly promptFormat: PromptFormat;
  /** What the tokenizer chose on its own (pad from eos, …); each was also passed to `onWarning`. */
  readonly notes: readonly string[];
  /** The ids covered by tokenizer.json (≤ `vocabSize` when config.json pads the embedding). */
  readonly tokenizerVocabSize: number;
  private readonly tok: HfLibTokenizer;
  private readonly cont: HfLibTokenizer;
  /** Added-token strings, longest first: a continuation is split before the first of them. */
  private readonly addedTokens: readonly string[];
  /** What `files()` returns. */
  private readonly savedFiles: Readonly<Record<string, string>>;

  constructor(files: HfTokenizerFiles, options: HfTokenizerOptions = {}) {
    const dir = files.dir;
    const jsonFile = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    const warn = options.onWarning ?? ((m: string) => console.warn(`quorum: ${m}`));
    const notes: string[] = [];
    const note = (m: string): void => {
      notes.push(m);
      warn(m);
    };
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(files.tokenizerJson) as Record<string, unknown>;
    } catch (cause) {
      throw fail(
        jsonFile,
        'json',
        `is not valid JSON (${(cause as Error).message})`,
        'the file is damaged; copy it again from the model',
        cause,
      );
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw fail(
        jsonFile,
        'json',
        `expected a tokenizer object, got ${describeValue(json)}`,
        'pass a Hugging Face tokenizer.json',
      );
    if (json.model === null || typeof json.model !== 'object')
      throw fail(
        jsonFile,
        'model',
        'has no "model" section',
        'the file is not a Hugging Face tokenizer.json (a "fast" tokenizer); convert it with transformers first',
      );
    if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens))
      throw fail(
        jsonFile,
        'added_tokens',
        `added_tokens must be a list, got ${describeValue(json.added_tokens)}`,
        'the file is damaged',
      );
    const config = files.tokenizerConfig ?? {};
    const libConfig = { ...config, chat_template: undefined };
    try {
      this.tok = new HfLibTokenizer({ added_tokens: [], ...json }, libConfig);
      const bare = withoutDummyPrefix(json);
      this.cont =
        bare === undefined ? this.tok : new HfLibTokenizer({ added_tokens: [], ...bare }, libConfig);
    } catch (cause) {
      throw fail(
        jsonFile,
        'model',
        `cannot be read by @huggingface/tokenizers: ${(cause as Error).message}`,
        'the tokenizer type is not supported or the file is damaged',
        cause,
      );
    }
    this.addedTokens = ((json.added_tokens as { content?: unknown }[] | undefined) ?? [])
      .map((t) => t.content)
      .filter((c): c is string => typeof c === 'string' && c !== '')
      .sort((a, b) => b.length - a.length);

    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.tokenizerVocabSize = maxId + 1;
    if (options.vocabSize !== undefined) {
      if (!Number.isSafeInteger(options.vocabSize) || options.vocabSize < this.tokenizerVocabSize) {
        throw fail(
          jsonFile,
          'model.vocab',
          `has ids up to ${maxId} (${this.tokenizerVocabSize} ids), but the model's vocab_size is ${options.vocabSize}`,
          'the tokenizer belongs to another model: copy tokenizer.json from the same folder as config.json',
        );
      }
    }
    this.vocabSize = options.vocabSize ?? this.tokenizerVocabSize;

    // Special tokens: tokenizer_config.json first, then special_tokens_map.json.
    const specials: Partial<Record<SpecialName, string>> = {};
    const ids: Partial<Record<SpecialName, number>> = {};
    for (const name of ['bos', 'eos', 'pad', 'unk'] as const) {
      const key = `${name}_token`;
      let value = tokenString(config[key]);
      let file = configFile;
      if (value === undefined || value === null) {
        const mapped = tokenString(files.specialTokensMap?.[key]);
        if (mapped !== undefined && mapped !== null) {
          value = mapped;
          file = path.join(dir, 'special_tokens_map.json');
        }
      }
      if (value === undefined || value === null) continue;
      const id = this.tok.token_to_id(value);
      if (id === undefined)
        throw fail(
          file,
          key,
          `names ${JSON.stringify(value)}, which is not a token of tokenizer.json`,
          'the tokenizer files come from different models; copy them together from one model folder',
        );
      specials[name] = value;
      ids[name] = id;
    }
    if (ids.eos === undefined)
      throw fail(
        configFile,
        'eos_token',
        'no eos_token is set (nor in special_tokens_map.json)',
        'set "eos_token" in tokenizer_config.json to the token that ends an answer',
      );
    if (ids.pad === undefined) {
      ids.pad = ids.eos;
      specials.pad = specials.eos as string;
      note(
        `${configFile}: no pad_token; padding uses the eos token ${JSON.stringify(specials.eos)} (id ${ids.eos}), as TRL does`,
      );
    }
    this.eosId = ids.eos;
    this.padId = ids.pad;
    this.bosId = ids.bos;
    this.unkId = ids.unk;
    this.specialTokens = specials;

    // BOS: add_bos_token when the config says, else what the post-processor does.
    const probe = this.tok.encode('a', { add_special_tokens: true }).ids;
    const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : probe[0] === this.bosId;
    if (addBos && this.bosId === undefined)
      throw fail(
        configFile,
        'add_bos_token',
        'is true but no bos_token is set',
        'set "bos_token" or set "add_bos_token" to false',
      );
    this.addBos = addBos;

    const choice = options.promptFormat ?? 'auto';
    const template = chatTemplateSource(config.chat_template, configFile);
    if (choice === 'chat-template' && template === undefined)
      throw fail(
        configFile,
        'chat_template',
        'has no chat_template',
        "use promptFormat 'instruction' (Quorum's ### Instruction: template), or add the model's chat template",
      );
    this.promptFormat =
      template !== undefined && choice !== 'instruction'
        ? chatTemplateFormat(template, specials, { file: configFile, onNote: note })
        : instructionFormat(addBos ? [this.bosId as number] : []);
    this.notes = notes;

    const hash = createHash('sha256')
      .update(files.tokenizerJson)
      .update(JSON.stringify({ specials, addBos, format: describeFormat(this.promptFormat) }))
      .digest('hex');
    this.id = `hf-${this.vocabSize}-${hash.slice(0, 12)}`;

    const saved: Record<string, string> = { 'tokenizer.json': files.tokenizerJson };
    const asText = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
    if (files.tokenizerConfig !== undefined)
      saved['tokenizer_config.json'] = files.tokenizerConfigText ?? asText(files.tokenizerConfig);
    if (files.specialTokensMap !== undefined)
      saved['special_tokens_map.json'] = files.specialTokensMapText ?? asText(files.specialTokensMap);
    const readOptions = {
      ...(template !== undefined && choice === 'instruction' ? { promptFormat: 'instruction' } : {}),
      ...(this.vocabSize > this.tokenizerVocabSize ? { vocabSize: this.vocabSize } : {}),
    };
    if (Object.keys(readOptions).length > 0) saved[HF_TOKENIZER_OPTIONS_FILE] = asText(readOptions);
    this.savedFiles = Object.freeze(saved);
  }

  /**
   * `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` (the last two when it was
   * built with them) as they were read, plus `quorum-tokenizer.json` when it was read with options that
   * change its id (see `HF_TOKENIZER_OPTIONS_FILE`): `loadTokenizer` of a folder with these files gives
   * this tokenizer again, with the same id.
   */
  files(): Readonly<Record<string, string>> {
    return this.savedFiles;
  }

  encode(text: string): Int32Array {
    if (text === '') return new Int32Array(0);
    return Int32Array.from(this.tok.encode(text, { add_special_tokens: false }).ids);
  }

  /**
   * Like `encode` without the dummy prefix before the text's first section; sections from the first
   * special-token string on encode as `encode` does (each starts a new section in tokenizers).
   */
  encodeContinuation(text: string): Int32Array {
    if (text === '' || this.cont === this.tok) return this.encode(text);
    let at = text.length;
    for (const t of this.addedTokens) {
      const i = text.indexOf(t);
      if (i >= 0 && i < at) at = i;
    }
    const glued = text.slice(0, at);
    const head = glued === '' ? [] : this.cont.encode(glued, { add_special_tokens: false }).ids;
    const rest = at < text.length ? this.tok.encode(text.slice(at), { add_special_tokens: false }).ids : [];
    return Int32Array.from([...head, ...rest]);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode(Array.from(ids), { skip_special_tokens: options.specials !== 'show' });
  }
}

/** The template text of `chat_template` (a string, or the `default` of a list of named templates). */
function chatTemplateSource(value: unknown, file: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const def = named.find((t) => t.name === 'default');
    if (def !== undefined && typeof def.template === 'string') return def.template;
    throw fail(
      file,
      'chat_template',
      `has no "default" template (names: ${named.map((t) => String(t.name)).join(', ')})`,
      'name one of the templates "default"',
    );
  }
  throw fail(
    file,
    'chat_template',
    `must be a string or a list of {name, template}, got ${describeValue(value)}`,
    'the file is damaged',
  );
}

function describeFormat(format: PromptFormat): unknown {
  return {
    name: format.name,
    prefixIds: format.prefixIds,
    head: format.head,
    tail: format.tail,
    end: format.end,
    eos: format.eos,
  };
}

/** The user message of a prompt: the instruction, then the input after a blank line when there is one. */
function chatContent(prompt: Prompt): string {
  return prompt.input === '' ? prompt.instruction : `${prompt.instruction}\n\n${prompt.input}`;
}

/**
 * A chat template as a `PromptFormat`. The template is rendered for a user and an assistant message whose
 * contents are placeholders, and the text is split around them: `head` (before the user content), `tail`
 * (between it and the answer), `end` (after the answer). So every prompt shares one layout, and a prompt's
 * ids are the same with or without an answer by construction.
 *
 * Where this cannot follow the template exactly (each is an error or a note):
 * - a template that does not write each content once, verbatim (one that trims, rewrites or drops it):
 *   an error naming the template, since the pieces cannot be found;
 * - a generation prompt (`add_generation_prompt`) that differs from the text before an answer in the full
 *   conversation: Quorum uses the latter (training and generation then agree) and says so in a note;
 * - text that changes with the content (a template that branches on it) is rendered for the placeholder
 *   only.
 * The answer is followed by `end` only (`eos: false`), unless the template writes nothing after it.
 */
export function chatTemplateFormat(
  source: string,
  specialTokens: Readonly<Partial<Record<SpecialName, string>>>,
  context: { readonly file: string; readonly onNote?: (message: string) => void },
): PromptFormat {
  const { file } = context;
  let template: Template;
  try {
    template = new Template(source);
  } catch (cause) {
    throw fail(
      file,
      'chat_template',
      `cannot be parsed: ${(cause as Error).message}`,
      'the template uses Jinja features @huggingface/jinja does not support, or is damaged',
      cause,
    );
  }
  const vars = {
    bos_token: specialTokens.bos ?? '',
    eos_token: specialTokens.eos ?? '',
    pad_token: specialTokens.pad ?? '',
    unk_token: specialTokens.unk ?? '',
  };
  const render = (messages: { role: string; content: string }[], addGenerationPrompt: boolean): string => {
    try {
      return template.render({ ...vars, messages, add_generation_prompt: addGenerationPrompt });
    } catch (cause) {
      throw fail(
        file,
        'chat_template',
        `fails to render a user/assistant conversation: ${(cause as Error).message}`,
        "use promptFormat 'instruction' for this model",
        cause,
      );
    }
  };
  const full = render(
    [
      { role: 'user', content: USER },
      { role: 'assistant', content: ASSISTANT },
    ],
    false,
  );
  const u = full.indexOf(USER);
  const a = full.indexOf(ASSISTANT);
  if (u < 0 || a < u || full.indexOf(USER, u + 1) >= 0 || full.indexOf(ASSISTANT, a + 1) >= 0) {
    throw fail(
      file,
      'chat_template',
      'does not write the user and the assistant content once each, in order',
      "use promptFormat 'instruction' for this model",
    );
  }
  const head = full.slice(0, u);
  const tail = full.slice(u + USER.length, a);
  const end = full.slice(a + ASSISTANT.length);
  const generation = render([{ role: 'user', content: USER }], true);
  // The prompt Quorum encodes ends before the tail's trailing spaces (they go with the answer; template.ts).
  const expected = head + USER + tail.replace(/ +$/, '');
  if (generation !== expected) {
    context.onNote?.(
      `${file}: the chat template's generation prompt ${JSON.stringify(generation.replace(USER, '{prompt}'))} differs from the text before an answer ${JSON.stringify(expected.replace(USER, '{prompt}'))}; prompts use the latter, so that a prompt encodes to the same ids with and without an answer`,
    );
  }
  return { name: 'chat-template', prefixIds: [], head, body: chatContent, tail, end, eos: end.trim() === '' };
}
