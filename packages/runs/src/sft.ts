/**
 * Supervised fine-tuning: data → token sequences → SftTrainer → a policy folder (`quorum sft`). With
 * `objective: 'lm'` the same trainer pretrains instead: documents (the shipped corpus or a JSONL file of
 * `{text}` rows) are tokenised, joined with eos and cut into `maxLength` blocks, and every token is learned.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  disposeGpt,
  type GptConfig,
  type GptParams,
  type GptPresetName,
  gptPreset,
  initGpt,
  resolveSftConfig,
  SftTrainer,
  savePolicy,
  type SftExample as TokenExample,
} from '@quorum/backbone';
import { ConfigError, Rng } from '@quorum/core';
import {
  asObject,
  CORPUS_SOURCES,
  type CorpusSource,
  type CorpusSplit,
  datasets,
  encodePromptResponse,
  loadSftExamples,
  packDocuments,
  pretrainCorpus,
  projectTokenizer,
  readJsonl,
  type SftExample,
  splitCorpus,
  stringField,
  type TextTokenizer,
  type TruncationMode,
} from '@quorum/data';
import { resolveMaxLength } from './length.js';
import { loadPolicyWithTokenizer } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';

export interface SftRunOptions {
  /**
   * What to fine-tune: `scratch` (default: a new model of `size` and `contextLength`), a Quorum policy
   * folder, or `hf:DIR`, a Hugging Face model folder (its config, weights and tokenizer).
   */
  readonly init?: string | undefined;
  /** Model size when starting from scratch. */
  readonly size: GptPresetName;
  /** Context of a model built from scratch (a loaded model brings its own). */
  readonly contextLength: number;
  /** Sequence length (prompt + answer); default: the context (a loaded model's capped at DEFAULT_MAX_LENGTH). */
  readonly maxLength?: number | undefined;
  /** Examples longer than maxLength: `left` (default) cuts the prompt's end and the answer's start, `drop` leaves them out. */
  readonly truncation?: TruncationMode | undefined;
  /** `alpaca-eval` (the shipped train-split answers that beat the reference) or a JSONL path. */
  readonly data: string;
  readonly out: string;
  readonly maxSteps: number;
  readonly batchSize: number;
  /** Optimizer steps between resumable states; default a quarter of maxSteps, at most 100. */
  readonly checkpointEvery?: number | undefined;
  readonly seed: number;
  /**
   * Continue from the newest state in `<out>/train-state` (a fresh start when there is none). The state's
   * settings must equal this run's: the SFT config (seed, lr, maxSteps, batch size, …; not how often it
   * logs, evaluates or saves), init, size, data, maxLength, truncation and the number of examples.
   */
  readonly resume: boolean;
  /** Resume even when the settings differ (warned through progress, recorded in quorum.json). */
  readonly forceResume?: boolean | undefined;
  /** Longest line of a JSONL data file, in bytes (default: @quorum/data's 8 MiB). */
  readonly maxLineBytes?: number | undefined;
  /** Stops at the next checkpoint boundary (after saving); the result says `stoppedEarly`. */
  readonly signal?: AbortSignal | undefined;
  /**
   * `sft` (default): the loss on the answers of instruction data. `lm`: next-token loss over every token of
   * packed documents; `data` is then `corpus` (the shipped text, see `corpus`) or a JSONL file of `{text}`.
   */
  readonly objective?: 'sft' | 'lm' | undefined;
  /** lm with `data: 'corpus'`: which shipped sources (default both, @quorum/data's `pretrainCorpus`). */
  readonly corpus?: readonly CorpusSource[] | undefined;
  /** lm with `data: 'corpus'`: `train` (default; AlpacaEval's eval split stays unseen) or `all`. */
  readonly corpusSplit?: CorpusSplit | undefined;
  /** lm: a seeded sample of this many documents (before the held-out slice), for quick runs. */
  readonly maxDocuments?: number | undefined;
  /**
   * lm: stop after about this many trained tokens: replaces `maxSteps` by ⌈maxTokens / (batchSize ×
   * (maxLength − 1))⌉ (a block of maxLength tokens has maxLength − 1 targets), so the schedule spans them.
   */
  readonly maxTokens?: number | undefined;
  /** The command line that ran this, recorded in quorum.json so the model can be rebuilt. */
  readonly command?: string | undefined;
}

/** What an lm run read: documents, characters and tokens of its train and held-out parts, and blocks. */
export interface CorpusFacts {
  readonly source: string;
  readonly documents: number;
  readonly evalDocuments: number;
  readonly characters: number;
  /** Identical texts kept once, blank ones left out (the shipped corpus only). */
  readonly duplicates: number;
  readonly tokens: number;
  readonly evalTokens: number;
  readonly blocks: number;
  readonly evalBlocks: number;
}

export interface SftRunResult {
  /** Training examples used, and how many of them were cut (`left`) or left out (`drop`). */
  readonly examples: { readonly used: number; readonly truncated: number; readonly dropped: number };
  readonly maxLength: number;
  readonly steps: number;
  readonly trainLoss: number;
  readonly evalLoss: number | undefined;
  readonly initialEvalLoss: number | undefined;
  readonly seconds: number;
  readonly stoppedEarly: boolean;
  /** Resumes that went ahead with other settings (forceResume), with the saved and current values. */
  readonly forcedResumes: SftTrainer['forcedResumes'];
  /** `objective: 'lm'` only: what was read. */
  readonly corpus?: CorpusFacts | undefined;
  /** Targets trained: steps × batch × (maxLength − 1) for lm (an upper bound: the tail block is shorter). */
  readonly tokensTrained?: number | undefined;
}

/**
 * Token sequences with the loss on the response only (the prompt template is shared with every model);
 * `truncated` counts the sequences that were cut, `dropped` those left out (`truncation: 'drop'`).
 */
export function toTokenExamples(
  tokenizer: TextTokenizer,
  examples: readonly SftExample[],
  maxLength: number,
  truncation: TruncationMode = 'left',
): { examples: TokenExample[]; truncated: number; dropped: number } {
  const out: TokenExample[] = [];
  let truncated = 0;
  let dropped = 0;
  for (const e of examples) {
    const enc = encodePromptResponse(tokenizer, e.prompt, e.response, { maxLength, truncation });
    if (enc === undefined) {
      dropped++;
      continue;
    }
    if (enc.overflow > 0) truncated++;
    out.push({
      ids: Array.from(enc.ids),
      lossMask: Array.from(enc.ids, (_, i) => (i >= enc.promptLength ? 1 : 0)),
    });
  }
  return { examples: out, truncated, dropped };
}

async function sftData(
  data: string,
  seed: number,
  maxLineBytes: number | undefined,
): Promise<{ train: SftExample[]; eval: SftExample[] }> {
  if (data === 'alpaca-eval') {
    const ae = await datasets.alpacaEval();
    // Train on the train split only; the eval split measures held-out loss (no eval instruction is trained on).
    return { train: ae.sftExamples({ split: 'train' }), eval: ae.sftExamples({ split: 'eval' }) };
  }
  if (!existsSync(data)) {
    throw new ConfigError(`data file ${data} does not exist`, {
      location: { field: '--data' },
      hint: 'pass alpaca-eval or a JSONL file of {instruction, input?, output} rows',
    });
  }
  const { examples } = await loadSftExamples(data, {
    format: 'sft',
    ...(maxLineBytes === undefined ? {} : { maxLineBytes }),
  });
  const order = new Rng(seed).fork('sft-holdout').permutation(examples.length);
  const nEval = Math.max(1, Math.floor(examples.length * 0.05));
  return {
    eval: order.slice(0, nEval).map((i) => examples[i] as SftExample),
    train: order.slice(nEval).map((i) => examples[i] as SftExample),
  };
}

interface TextDocument {
  readonly text: string;
}

/** The documents of an lm run: the shipped corpus or a JSONL file of `{text}` rows; blank texts left out. */
async function lmDocuments(
  options: SftRunOptions,
): Promise<{ documents: TextDocument[]; duplicates: number; source: string }> {
  let documents: TextDocument[];
  let duplicates = 0;
  let source: string;
  if (options.data === 'corpus') {
    const corpus = await pretrainCorpus({
      ...(options.corpus === undefined ? {} : { sources: options.corpus }),
      ...(options.corpusSplit === undefined ? {} : { split: options.corpusSplit }),
    });
    documents = [...corpus.documents];
    duplicates = corpus.counts.duplicates + corpus.counts.empty;
    source = `corpus ${corpus.sources.join('+')} (AlpacaEval ${corpus.split === 'all' ? 'train and eval' : 'train'} split)`;
  } else {
    if (!existsSync(options.data)) {
      throw new ConfigError(`data file ${options.data} does not exist`, {
        location: { field: '--data' },
        hint: 'with --objective lm pass corpus (the shipped text) or a JSONL file of {"text": …} rows',
      });
    }
    documents = [];
    for await (const { value, line } of readJsonl(options.data, {
      ...(options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes }),
    })) {
      const loc = { file: options.data, line };
      const text = stringField(asObject(value, loc, '{"text": "..."}'), 'text', loc);
      if (text.trim() !== '') documents.push({ text });
    }
    source = options.data;
  }
  if (options.maxDocuments !== undefined && options.maxDocuments < documents.length) {
    const keep = new Set(
      new Rng(options.seed).fork('lm-sample').permutation(documents.length).slice(0, options.maxDocuments),
    );
    documents = documents.filter((_, i) => keep.has(i));
  }
  return { documents, duplicates, source };
}

/** Held-out documents, tokenised and packed into blocks of `maxLength`. */
function lmBlocks(
  documents: readonly TextDocument[],
  tokenizer: TextTokenizer,
  maxLength: number,
  seed: number,
): { train: TokenExample[]; eval: TokenExample[]; facts: Omit<CorpusFacts, 'source' | 'duplicates'> } {
  const split = splitCorpus(documents, { seed });
  const encode = (
    docs: readonly TextDocument[],
  ): { ids: Int32Array[]; tokens: number; characters: number } => {
    const ids = docs.map((d) => tokenizer.encode(d.text));
    return {
      ids,
      tokens: ids.reduce((n, x) => n + x.length, 0),
      characters: docs.reduce((n, d) => n + d.text.length, 0),
    };
  };
  const train = encode(split.train);
  const held = encode(split.eval);
  const trainBlocks = packDocuments(train.ids, { blockLength: maxLength, eosId: tokenizer.eosId });
  const evalBlocks = packDocuments(held.ids, { blockLength: maxLength, eosId: tokenizer.eosId });
  return {
    train: trainBlocks,
    eval: evalBlocks,
    facts: {
      documents: split.train.length,
      evalDocuments: split.eval.length,
      characters: train.characters + held.characters,
      tokens: train.tokens,
      evalTokens: held.tokens,
      blocks: trainBlocks.length,
      evalBlocks: evalBlocks.length,
    },
  };
}

/** `sft` reads instruction data, `lm` documents: a data source of the other kind is refused up front. */
function checkObjectiveData(options: SftRunOptions, objective: 'sft' | 'lm'): void {
  if (objective === 'sft' && options.data === 'corpus') {
    throw new ConfigError('data corpus (plain documents) needs the lm objective', {
      location: { field: '--data' },
      hint: 'pass --objective lm to pretrain on the shipped corpus, or --data alpaca-eval for SFT',
    });
  }
  if (objective === 'lm' && options.data === 'alpaca-eval') {
    throw new ConfigError('the lm objective reads documents, not the alpaca-eval SFT rows', {
      location: { field: '--data' },
      hint: 'pass --data corpus --corpus alpaca-eval (every train-split instruction and answer as text)',
    });
  }
  if (objective === 'sft') {
    const lmOnly = (
      [
        ['corpus', '--corpus'],
        ['corpusSplit', '--corpus-split'],
        ['maxDocuments', '--max-documents'],
        ['maxTokens', '--max-tokens'],
      ] as const
    ).find(([key]) => options[key] !== undefined);
    if (lmOnly !== undefined) {
      throw new ConfigError(`${lmOnly[1]} applies to the lm objective only`, {
        location: { field: lmOnly[1] },
        hint: `pass --objective lm, or leave ${lmOnly[1]} out`,
      });
    }
  }
}

/** The lm settings a resume compares (and quorum.json records). */
function lmSettings(options: SftRunOptions, corpus: CorpusFacts): Record<string, unknown> {
  return {
    objective: 'lm',
    ...(options.data === 'corpus'
      ? { corpusSources: options.corpus ?? CORPUS_SOURCES, corpusSplit: options.corpusSplit ?? 'train' }
      : {}),
    ...(options.maxDocuments === undefined ? {} : { maxDocuments: options.maxDocuments }),
    ...(options.maxTokens === undefined ? {} : { maxTokens: options.maxTokens }),
    documents: corpus.documents,
  };
}

/** The model SFT starts from: a new one (`scratch`), a policy folder or `hf:DIR`. */
async function sftStart(
  options: SftRunOptions,
): Promise<{ config: GptConfig; params: GptParams; tokenizer: TextTokenizer }> {
  const init = options.init ?? 'scratch';
  if (init !== 'scratch') {
    const { config, params, tokenizer } = await loadPolicyWithTokenizer(init);
    return { config, params, tokenizer };
  }
  const tokenizer = projectTokenizer();
  const config = gptPreset(options.size, {
    vocabSize: tokenizer.vocabSize,
    contextLength: options.contextLength,
  });
  return { config, params: initGpt(config, new Rng(options.seed).fork('sft/init')), tokenizer };
}

/** Fine-tunes `options.init` (a new model by default) on `options.data` and writes it to `options.out`. */
export async function runSft(
  options: SftRunOptions,
  progress: RunProgress = silentProgress,
): Promise<SftRunResult> {
  const objective = options.objective ?? 'sft';
  checkObjectiveData(options, objective);
  const rows =
    objective === 'sft' ? await sftData(options.data, options.seed, options.maxLineBytes) : undefined;
  const docs = objective === 'lm' ? await lmDocuments(options) : undefined;
  const { config, params, tokenizer } = await sftStart(options);
  let maxLength: number;
  let trainSeqs: ReturnType<typeof toTokenExamples>;
  let evalSeqs: TokenExample[];
  let corpus: CorpusFacts | undefined;
  try {
    maxLength = resolveMaxLength(config, options.maxLength, 'maxLength');
    if (docs !== undefined) {
      const packed = lmBlocks(docs.documents, tokenizer, maxLength, options.seed);
      trainSeqs = { examples: packed.train, truncated: 0, dropped: 0 };
      evalSeqs = packed.eval;
      corpus = { source: docs.source, duplicates: docs.duplicates, ...packed.facts };
    } else {
      const { train, eval: held } = rows as { train: SftExample[]; eval: SftExample[] };
      trainSeqs = toTokenExamples(tokenizer, train, maxLength, options.truncation);
      evalSeqs = toTokenExamples(tokenizer, held, maxLength, options.truncation).examples;
      if (trainSeqs.examples.length === 0) {
        throw new ConfigError(
          `no training example fits in ${maxLength} tokens (all ${train.length} dropped)`,
          {
            location: { field: 'maxLength' },
            hint: "raise maxLength or use truncation 'left'",
          },
        );
      }
    }
  } catch (err) {
    disposeGpt(params);
    throw err;
  }
  const examples = {
    used: trainSeqs.examples.length,
    truncated: trainSeqs.truncated,
    dropped: trainSeqs.dropped,
  };
  if (corpus !== undefined)
    progress.log(
      `lm corpus: ${corpus.documents} documents (${corpus.evalDocuments} held out), ${corpus.characters} characters, ${corpus.tokens} training tokens in ${corpus.blocks} blocks of ≤ ${maxLength}${corpus.duplicates > 0 ? `; ${corpus.duplicates} duplicate or blank texts left out` : ''}`,
    );
  else if (examples.truncated + examples.dropped > 0)
    progress.log(
      `${maxLength}-token sequences: ${examples.truncated} of ${rows?.train.length} training examples truncated, ${examples.dropped} dropped`,
    );
  const maxSteps =
    objective === 'lm' && options.maxTokens !== undefined
      ? Math.max(1, Math.ceil(options.maxTokens / (options.batchSize * (maxLength - 1))))
      : options.maxSteps;
  const sft = resolveSftConfig({
    ...(objective === 'lm' ? { objective } : {}),
    maxSteps,
    batchSize: options.batchSize,
    seed: options.seed,
    evalEvery: Math.max(10, Math.round(maxSteps / 5)),
    ...(options.checkpointEvery === undefined ? {} : { checkpointEvery: options.checkpointEvery }),
  });
  const init = options.init ?? 'scratch';
  const truncation = options.truncation ?? 'left';
  const tokensTrained = (steps: number): number =>
    steps * sft.batchSize * sft.gradAccumSteps * (maxLength - 1);
  const trainer = new SftTrainer({
    config,
    params,
    sft,
    train: trainSeqs.examples,
    eval: evalSeqs,
    outDir: path.join(options.out, 'train-state'),
    padId: tokenizer.padId,
    settings: {
      init,
      ...(init === 'scratch' ? { size: options.size } : {}),
      data: options.data,
      maxLength,
      truncation,
      trainExamples: trainSeqs.examples.length,
      ...(corpus === undefined ? {} : lmSettings(options, corpus)),
    },
    forceResume: options.forceResume,
    onNote: (m) => progress.log(m),
    onProgress: (p) =>
      progress.update(
        p.step,
        p.maxSteps,
        `loss ${p.loss.toFixed(3)}${p.evalLoss === undefined ? '' : ` eval ${p.evalLoss.toFixed(3)}`}  ${Math.round(p.tokensPerSec)} tok/s`,
      ),
  });
  try {
    if (options.resume) {
      const step = await trainer.resume();
      progress.log(step === undefined ? 'no checkpoint yet: starting fresh' : `resuming from step ${step}`);
    }
    // Saved with every checkpoint, so a resumed run still reports where it started.
    if (trainer.step === 0) trainer.evaluateInitial();
    const { initialEvalLoss } = trainer;
    const slice = trainer.checkpointEvery > 0 ? trainer.checkpointEvery : sft.maxSteps;
    const began = Date.now();
    let summary = { steps: trainer.step, trainLoss: Number.NaN, evalLoss: undefined as number | undefined };
    // Train in slices so Ctrl-C stops at the next slice boundary, after a checkpoint.
    while (trainer.step < sft.maxSteps) {
      if (options.signal?.aborted === true) {
        return {
          ...summary,
          examples,
          maxLength,
          initialEvalLoss,
          seconds: (Date.now() - began) / 1000,
          stoppedEarly: true,
          forcedResumes: trainer.forcedResumes,
          ...(corpus === undefined ? {} : { corpus, tokensTrained: tokensTrained(trainer.step) }),
        };
      }
      summary = await trainer.train({ stopAtStep: Math.min(sft.maxSteps, trainer.step + slice) });
    }
    await savePolicy(options.out, {
      config,
      params,
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize },
      tokenizerFiles: tokenizer.files(),
      training: {
        kind: 'sft',
        init,
        data: options.data,
        maxLength,
        truncation,
        examples,
        steps: summary.steps,
        trainLoss: summary.trainLoss,
        evalLoss: summary.evalLoss,
        initialEvalLoss,
        ...(init === 'scratch' ? { size: options.size } : {}),
        seed: options.seed,
        ...(trainer.forcedResumes.length === 0 ? {} : { forcedResumes: trainer.forcedResumes }),
        ...(corpus === undefined
          ? {}
          : { ...lmSettings(options, corpus), corpus, tokensTrained: tokensTrained(summary.steps) }),
        ...(options.command === undefined ? {} : { command: options.command }),
      },
    });
    return {
      ...summary,
      examples,
      maxLength,
      initialEvalLoss,
      seconds: (Date.now() - began) / 1000,
      stoppedEarly: false,
      forcedResumes: trainer.forcedResumes,
      ...(corpus === undefined ? {} : { corpus, tokensTrained: tokensTrained(summary.steps) }),
    };
  } finally {
    trainer.dispose();
    disposeGpt(params);
  }
}
