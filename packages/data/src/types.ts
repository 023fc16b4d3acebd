/**
 * The normalised examples every loader produces and every model package consumes. One shape for all
 * preference data (AlpacaFarm, TRL, HH-RLHF, the shipped AlpacaEval), one for SFT rows.
 */

/** What the model is asked. `input` is `''` when the task has no separate input. */
export interface Prompt {
  readonly instruction: string;
  readonly input: string;
}

/** Where an example came from; all fields optional, for reports and debugging, never for training logic. */
export interface ExampleMeta {
  /** Dataset or file the example came from, e.g. `alpaca-eval` or `prefs.jsonl`. */
  readonly source: string;
  /** 1-based line in the source file, when it came from one. */
  readonly line?: number;
  /** Instruction id inside the source (AlpacaEval: 0..804). */
  readonly instructionId?: number;
  /** The fixed split of the instruction, when the source has one. */
  readonly split?: Split;
  /** Generator (model) names of the two answers, when known. */
  readonly chosenGenerator?: string;
  readonly rejectedGenerator?: string;
  /** `reference`: one side is the reference model's answer; `derived`: A beat the reference and B lost to it. */
  readonly kind?: 'reference' | 'derived';
  /** The raw label as written in the source (AlpacaFarm: 1, 2, 0 = draw, 1.5 = tie). */
  readonly label?: number;
}

export type Split = 'train' | 'eval';

/**
 * A preference between two answers to one prompt: `chosen` ≻ `rejected`. When `tie` is true the
 * source expressed no preference and chosen/rejected are just the two answers in file order; trainers
 * skip ties unless asked otherwise.
 */
export interface PreferencePair {
  /** Unique within a load, stable across runs (e.g. `alpaca-eval/12/gpt4>text_davinci_003`, `prefs.jsonl:7`). */
  readonly id: string;
  readonly prompt: Prompt;
  readonly chosen: string;
  readonly rejected: string;
  readonly tie?: boolean;
  /** Training weight; 1 when absent. Length balancing sets it. */
  readonly weight?: number;
  readonly meta?: ExampleMeta;
}

/** An instruction with one good answer, for supervised fine-tuning. */
export interface SftExample {
  readonly id: string;
  readonly prompt: Prompt;
  readonly response: string;
  readonly meta?: ExampleMeta;
}

/** A row's place in its file, as handed to `DatasetFormat.parse`. */
export interface RowLocation {
  readonly file: string;
  readonly line: number;
}

export function isPreferencePair(value: PreferencePair | SftExample): value is PreferencePair {
  return 'chosen' in value;
}
