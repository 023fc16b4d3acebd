/** Supervised fine-tuning from the CLI: data → token sequences → SftTrainer → a policy folder. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  disposeGpt,
  type GptConfig,
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
  type Tokenizer,
} from '@quorum/data';
import type { ProgressLine } from '../progress.js';

export interface SftRunOptions {
  readonly size: GptPresetName;
  readonly contextLength: number;
  /** `alpaca-eval` (the shipped train-split answers that beat the reference) or a JSONL path. */
  readonly data: string;
  readonly out: string;
  readonly maxSteps: number;
  readonly batchSize: number;
  /** Optimizer steps between resumable states; default a fifth of maxSteps, at least 10. */
  readonly checkpointEvery?: number | undefined;
  readonly seed: number;
  readonly resume: boolean;
  readonly progress?: ProgressLine | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface SftRunResult {
  readonly steps: number;
  readonly trainLoss: number;
  readonly evalLoss: number | undefined;
  readonly initialEvalLoss: number | undefined;
  readonly seconds: number;
  readonly stoppedEarly: boolean;
}

/** Token sequences with the loss on the response only (the prompt template is shared with every model). */
export function toTokenExamples(
  tokenizer: Tokenizer,
  examples: readonly SftExample[],
  maxLength: number,
): TokenExample[] {
  return examples.map((e) => {
    const enc = encodePromptResponse(tokenizer, e.prompt, e.response, { maxLength });
    return {
      ids: Array.from(enc.ids),
      lossMask: Array.from(enc.ids, (_, i) => (i >= enc.promptLength ? 1 : 0)),
    };
  });
}

async function sftData(data: string, seed: number): Promise<{ train: SftExample[]; eval: SftExample[] }> {
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
  const { examples } = await loadSftExamples(data, { format: 'sft' });
  const order = new Rng(seed).fork('sft-holdout').permutation(examples.length);
  const nEval = Math.max(1, Math.floor(examples.length * 0.05));
  return {
    eval: order.slice(0, nEval).map((i) => examples[i] as SftExample),
    train: order.slice(nEval).map((i) => examples[i] as SftExample),
  };
}

export async function runSft(options: SftRunOptions): Promise<SftRunResult> {
  const tokenizer = projectTokenizer();
  const config: GptConfig = gptPreset(options.size, {
    vocabSize: tokenizer.vocabSize,
    contextLength: options.contextLength,
  });
  const { train, eval: held } = await sftData(options.data, options.seed);
  const trainSeqs = toTokenExamples(tokenizer, train, config.contextLength);
  const evalSeqs = toTokenExamples(tokenizer, held, config.contextLength);
  const sft = resolveSftConfig({
    maxSteps: options.maxSteps,
    batchSize: options.batchSize,
    seed: options.seed,
    evalEvery: Math.max(10, Math.round(options.maxSteps / 5)),
    checkpointEvery: options.checkpointEvery ?? Math.max(10, Math.round(options.maxSteps / 5)),
  });
  const params = initGpt(config, new Rng(options.seed).fork('sft/init'));
  const trainer = new SftTrainer({
    config,
    params,
    sft,
    train: trainSeqs,
    eval: evalSeqs,
    outDir: path.join(options.out, 'train-state'),
    padId: tokenizer.padId,
    onProgress: (p) =>
      options.progress?.update(
        p.step,
        p.maxSteps,
        `loss ${p.loss.toFixed(3)}${p.evalLoss === undefined ? '' : ` eval ${p.evalLoss.toFixed(3)}`}  ${Math.round(p.tokensPerSec)} tok/s`,
      ),
  });
  try {
    let initialEvalLoss: number | undefined;
    if (options.resume) {
      const step = await trainer.resume();
      options.progress?.log(
        step === undefined ? 'no checkpoint yet: starting fresh' : `resuming from step ${step}`,
      );
    }
    if (trainer.step === 0) initialEvalLoss = trainer.evaluate();
    const began = Date.now();
    let summary = { steps: trainer.step, trainLoss: Number.NaN, evalLoss: undefined as number | undefined };
    // Train in slices so Ctrl-C stops at the next slice boundary, after a checkpoint.
    while (trainer.step < sft.maxSteps) {
      if (options.signal?.aborted === true) {
        return { ...summary, initialEvalLoss, seconds: (Date.now() - began) / 1000, stoppedEarly: true };
      }
      summary = await trainer.train({
        stopAtStep: Math.min(sft.maxSteps, trainer.step + sft.checkpointEvery),
      });
    }
    await savePolicy(options.out, {
      config,
      params,
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
      training: {
        kind: 'sft',
        data: options.data,
        steps: summary.steps,
        trainLoss: summary.trainLoss,
        evalLoss: summary.evalLoss,
        initialEvalLoss,
        size: options.size,
        seed: options.seed,
      },
    });
    return { ...summary, initialEvalLoss, seconds: (Date.now() - began) / 1000, stoppedEarly: false };
  } finally {
    trainer.dispose();
    disposeGpt(params);
  }
}
