/** Supervised fine-tuning: data → token sequences → SftTrainer → a policy folder (`quorum sft`). */
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
  datasets,
  encodePromptResponse,
  loadSftExamples,
  projectTokenizer,
  type SftExample,
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
  const { train, eval: held } = await sftData(options.data, options.seed, options.maxLineBytes);
  const { config, params, tokenizer } = await sftStart(options);
  let maxLength: number;
  let trainSeqs: ReturnType<typeof toTokenExamples>;
  let evalSeqs: TokenExample[];
  try {
    maxLength = resolveMaxLength(config, options.maxLength, 'maxLength');
    trainSeqs = toTokenExamples(tokenizer, train, maxLength, options.truncation);
    evalSeqs = toTokenExamples(tokenizer, held, maxLength, options.truncation).examples;
    if (trainSeqs.examples.length === 0) {
      throw new ConfigError(`no training example fits in ${maxLength} tokens (all ${train.length} dropped)`, {
        location: { field: 'maxLength' },
        hint: "raise maxLength or use truncation 'left'",
      });
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
  if (examples.truncated + examples.dropped > 0)
    progress.log(
      `${maxLength}-token sequences: ${examples.truncated} of ${train.length} training examples truncated, ${examples.dropped} dropped`,
    );
  const sft = resolveSftConfig({
    maxSteps: options.maxSteps,
    batchSize: options.batchSize,
    seed: options.seed,
    evalEvery: Math.max(10, Math.round(options.maxSteps / 5)),
    ...(options.checkpointEvery === undefined ? {} : { checkpointEvery: options.checkpointEvery }),
  });
  const init = options.init ?? 'scratch';
  const truncation = options.truncation ?? 'left';
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
    };
  } finally {
    trainer.dispose();
    disposeGpt(params);
  }
}
