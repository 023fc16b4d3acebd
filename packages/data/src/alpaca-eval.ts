/**
 * The shipped AlpacaEval data: 805 instructions with a fixed train/eval split, 52 generators' answers,
 * and GPT-4's verdict on each model answer against text-davinci-003 (the reference). Loaded once per
 * process. Nothing built from `train` ever contains an `eval` instruction.
 */
import { Rng, resolveOptions } from '@quorum/core';
import { z } from 'zod';
import { asObject, fieldError, numberField, stringField } from './fields.js';
import { readJsonl } from './jsonl.js';
import { balanceLength, longerWins } from './length.js';
import { datasetPath } from './paths.js';
import type { PreferencePair, Prompt, SftExample, Split } from './types.js';

export const REFERENCE_GENERATOR = 'text_davinci_003';

export interface AlpacaInstruction {
  readonly id: number;
  readonly instruction: string;
  /** Source subset, e.g. `helpful_base`. */
  readonly dataset: string;
  readonly split: Split;
}

/** GPT-4's verdict on a model answer against the reference answer. */
export type Gold = 'win' | 'loss' | 'draw';

/** A model answer with its verdict against the reference. */
export interface Candidate {
  readonly generator: string;
  readonly output: string;
  readonly gold: Gold;
  /** Raw label: 2 = the model's answer preferred, 1 = the reference, 0 = draw, 1.5 = tie. */
  readonly label: number;
}

/** An instruction with every judged model answer: the offline Best-of-n pool. */
export interface CandidatePool {
  readonly instructionId: number;
  readonly prompt: Prompt;
  readonly reference: string;
  readonly candidates: readonly Candidate[];
}

export const alpacaPairOptions = z
  .object({
    /** Which instructions: `train` (644) or `eval` (161). */
    split: z.enum(['train', 'eval']).default('train'),
    /** `reference`: model vs text-davinci-003 as judged; `derived`: winner ≻ loser between model answers; `both`. */
    source: z.enum(['reference', 'derived', 'both']).default('reference'),
    /** Derived pairs per instruction; default: a random matching, min(#winners, #losers), each answer used once. */
    derivedPerInstruction: z.number().int().positive().optional(),
    /** `skip` drops draws and ties (the default for training); `keep` keeps them with `tie: true`. */
    ties: z.enum(['skip', 'keep']).default('skip'),
    /** Length balancing: `none`, `weights` (reweight) or `sample` (seeded subsample). */
    balance: z.enum(['none', 'weights', 'sample']).default('none'),
    seed: z.number().int().default(0),
  })
  .strict();
export type AlpacaPairOptions = z.input<typeof alpacaPairOptions>;

/** Pair counts and longer-wins rates for each option, on one split. */
export interface PairReportRow {
  readonly source: 'reference' | 'derived' | 'both';
  readonly balance: 'none' | 'weights' | 'sample';
  readonly pairs: number;
  readonly longerWinsRate: number;
}

const goldOf = (label: number): Gold => (label === 2 ? 'win' : label === 1 ? 'loss' : 'draw');

export class AlpacaEvalData {
  readonly reference = REFERENCE_GENERATOR;
  readonly instructions: readonly AlpacaInstruction[];
  /** All 52 generator names, the reference included, sorted. */
  readonly generators: readonly string[];
  private readonly outputs: Map<number, Map<string, string>>;
  private readonly labels: Map<number, Map<string, number>>;
  private readonly candidateCache = new Map<number, Candidate[]>();

  constructor(
    instructions: AlpacaInstruction[],
    outputs: Map<number, Map<string, string>>,
    labels: Map<number, Map<string, number>>,
  ) {
    this.instructions = instructions;
    this.outputs = outputs;
    this.labels = labels;
    const names = new Set<string>();
    for (const m of outputs.values()) for (const g of m.keys()) names.add(g);
    this.generators = [...names].sort();
  }

  /** Instructions of one split, in id order. */
  split(split: Split): AlpacaInstruction[] {
    return this.instructions.filter((i) => i.split === split);
  }

  prompt(id: number): Prompt {
    return { instruction: this.instructions[id]!.instruction, input: '' };
  }

  /** The answer of `generator` to instruction `id`, when it exists. */
  output(id: number, generator: string): string | undefined {
    return this.outputs.get(id)?.get(generator);
  }

  /** Every judged model answer to instruction `id` (sorted by generator), with its verdict. */
  candidates(id: number): Candidate[] {
    let cached = this.candidateCache.get(id);
    if (cached === undefined) this.candidateCache.set(id, (cached = this.joinCandidates(id)));
    return [...cached];
  }

  private joinCandidates(id: number): Candidate[] {
    const out: Candidate[] = [];
    for (const [generator, label] of this.labels.get(id) ?? []) {
      const output = this.output(id, generator);
      if (output !== undefined) out.push({ generator, output, gold: goldOf(label), label });
    }
    return out.sort((a, b) => (a.generator < b.generator ? -1 : 1));
  }

  /** Offline Best-of-n pools: every instruction of `split` (default `eval`) with its judged answers. */
  candidatePools(split: Split = 'eval'): CandidatePool[] {
    return this.split(split).map((inst) => ({
      instructionId: inst.id,
      prompt: this.prompt(inst.id),
      reference: this.output(inst.id, REFERENCE_GENERATOR) ?? '',
      candidates: this.candidates(inst.id),
    }));
  }

  /** Preference pairs for one split; see `alpacaPairOptions` for the options and their defaults. */
  pairs(options: AlpacaPairOptions = {}): PreferencePair[] {
    const o = resolveOptions(alpacaPairOptions, options, 'alpacaEval.pairs');
    const rng = new Rng(o.seed);
    const out: PreferencePair[] = [];
    for (const inst of this.split(o.split)) {
      if (o.source !== 'derived') out.push(...this.referencePairs(inst, o.ties === 'keep'));
      if (o.source !== 'reference')
        out.push(...this.derivedPairs(inst, rng.fork(`derived/${inst.id}`), o.derivedPerInstruction));
    }
    return o.balance === 'none' ? out : balanceLength(out, { method: o.balance, seed: o.seed });
  }

  /** Pair count and longer-wins rate for every source × balance option on `split`. */
  pairReport(split: Split = 'train', seed = 0): PairReportRow[] {
    const rows: PairReportRow[] = [];
    for (const source of ['reference', 'derived', 'both'] as const) {
      for (const balance of ['none', 'weights', 'sample'] as const) {
        const pairs = this.pairs({ split, source, balance, seed });
        rows.push({ source, balance, pairs: pairs.length, longerWinsRate: longerWins(pairs).rate });
      }
    }
    return rows;
  }

  /**
   * SFT rows for `train` (the default; `eval` only when asked, e.g. for held-out loss): each instruction
   * with the answers GPT-4 preferred over the reference (`answers: 'winners'`, the default) or the
   * reference answer itself (`'reference'`).
   */
  sftExamples(options: { split?: Split; answers?: 'winners' | 'reference' } = {}): SftExample[] {
    const split = options.split ?? 'train';
    const out: SftExample[] = [];
    for (const inst of this.split(split)) {
      const meta = { source: 'alpaca-eval', instructionId: inst.id, split };
      if (options.answers === 'reference') {
        const response = this.output(inst.id, REFERENCE_GENERATOR);
        if (response !== undefined)
          out.push({
            id: `alpaca-eval/${inst.id}/${REFERENCE_GENERATOR}`,
            prompt: this.prompt(inst.id),
            response,
            meta,
          });
        continue;
      }
      for (const c of this.candidates(inst.id)) {
        if (c.gold !== 'win') continue;
        out.push({
          id: `alpaca-eval/${inst.id}/${c.generator}`,
          prompt: this.prompt(inst.id),
          response: c.output,
          meta: { ...meta, chosenGenerator: c.generator },
        });
      }
    }
    return out;
  }

  private referencePairs(inst: AlpacaInstruction, keepTies: boolean): PreferencePair[] {
    const ref = this.output(inst.id, REFERENCE_GENERATOR);
    if (ref === undefined) return [];
    const out: PreferencePair[] = [];
    for (const c of this.candidates(inst.id)) {
      if (c.gold === 'draw' && !keepTies) continue;
      const modelWins = c.gold === 'win';
      out.push({
        id: `alpaca-eval/${inst.id}/${modelWins ? c.generator : REFERENCE_GENERATOR}>${modelWins ? REFERENCE_GENERATOR : c.generator}`,
        prompt: this.prompt(inst.id),
        chosen: modelWins ? c.output : ref,
        rejected: modelWins ? ref : c.output,
        ...(c.gold === 'draw' ? { tie: true } : {}),
        meta: {
          source: 'alpaca-eval',
          instructionId: inst.id,
          split: inst.split,
          kind: 'reference',
          chosenGenerator: modelWins ? c.generator : REFERENCE_GENERATOR,
          rejectedGenerator: modelWins ? REFERENCE_GENERATOR : c.generator,
          label: c.label,
        },
      });
    }
    return out;
  }

  /** A ≻ B when A beat the reference and B lost to it. Default: a random matching of winners and losers. */
  private derivedPairs(
    inst: AlpacaInstruction,
    rng: Rng,
    perInstruction: number | undefined,
  ): PreferencePair[] {
    const cands = this.candidates(inst.id);
    const winners = cands.filter((c) => c.gold === 'win');
    const losers = cands.filter((c) => c.gold === 'loss');
    let matches: [Candidate, Candidate][];
    if (perInstruction === undefined) {
      rng.shuffle(winners);
      rng.shuffle(losers);
      matches = winners.slice(0, losers.length).map((w, i) => [w, losers[i]!] as [Candidate, Candidate]);
    } else {
      const all = winners.flatMap((w) => losers.map((l) => [w, l] as [Candidate, Candidate]));
      matches = rng.shuffle(all).slice(0, perInstruction);
    }
    return matches.map(([w, l]) => ({
      id: `alpaca-eval/${inst.id}/${w.generator}>${l.generator}`,
      prompt: this.prompt(inst.id),
      chosen: w.output,
      rejected: l.output,
      meta: {
        source: 'alpaca-eval',
        instructionId: inst.id,
        split: inst.split,
        kind: 'derived',
        chosenGenerator: w.generator,
        rejectedGenerator: l.generator,
      },
    }));
  }
}

async function loadAlpacaEval(): Promise<AlpacaEvalData> {
  const instructions: AlpacaInstruction[] = [];
  for await (const { value, line } of readJsonl(datasetPath('alpaca_eval/instructions.jsonl.gz'))) {
    const loc = { file: datasetPath('alpaca_eval/instructions.jsonl.gz'), line };
    const r = asObject(value, loc, '{"id", "instruction", "dataset", "split"}');
    const split = stringField(r, 'split', loc);
    if (split !== 'train' && split !== 'eval')
      throw fieldError(
        loc,
        'split',
        `"split" must be train or eval, got ${split}`,
        're-copy the shipped file',
      );
    instructions.push({
      id: numberField(r, 'id', loc),
      instruction: stringField(r, 'instruction', loc),
      dataset: stringField(r, 'dataset', loc),
      split,
    });
  }
  instructions.sort((a, b) => a.id - b.id);
  const outputs = new Map<number, Map<string, string>>();
  const outputsFile = datasetPath('alpaca_eval/outputs.jsonl.gz');
  for await (const { value, line } of readJsonl(outputsFile)) {
    const loc = { file: outputsFile, line };
    const r = asObject(value, loc, '{"id", "generator", "output"}');
    const id = numberField(r, 'id', loc);
    let m = outputs.get(id);
    if (m === undefined) outputs.set(id, (m = new Map()));
    m.set(stringField(r, 'generator', loc), stringField(r, 'output', loc));
  }
  const labels = new Map<number, Map<string, number>>();
  const prefsFile = datasetPath('alpaca_eval/gpt4_preferences.jsonl.gz');
  for await (const { value, line } of readJsonl(prefsFile)) {
    const loc = { file: prefsFile, line };
    const r = asObject(value, loc, '{"id", "generator_1", "generator_2", "preference"}');
    const id = numberField(r, 'id', loc);
    if (stringField(r, 'generator_1', loc) !== REFERENCE_GENERATOR)
      throw fieldError(
        loc,
        'generator_1',
        `generator_1 must be ${REFERENCE_GENERATOR}`,
        're-copy the shipped file',
      );
    let m = labels.get(id);
    if (m === undefined) labels.set(id, (m = new Map()));
    m.set(stringField(r, 'generator_2', loc), numberField(r, 'preference', loc));
  }
  return new AlpacaEvalData(instructions, outputs, labels);
}

let cache: Promise<AlpacaEvalData> | undefined;

/** The shipped AlpacaEval data, parsed once per process. */
export function alpacaEval(): Promise<AlpacaEvalData> {
  cache ??= loadAlpacaEval().catch((error: unknown) => {
    cache = undefined;
    throw error;
  });
  return cache;
}
