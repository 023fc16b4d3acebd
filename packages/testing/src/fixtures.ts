/**
 * Tiny fixtures for unit tests: a few real preference rows and seeded random tensors.
 */
import { Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';

/**
 * One AlpacaEval preference row in the AlpacaFarm layout, plus where it came from.
 * `preference`: 1 = `output_1` preferred, 2 = `output_2` preferred, 0 = draw.
 */
export interface PreferenceRowFixture {
  readonly instruction: string;
  readonly input: string;
  readonly output_1: string;
  readonly output_2: string;
  readonly preference: 0 | 1 | 1.5 | 2;
  /** AlpacaEval instruction id (0..804). */
  readonly id: number;
  /** The fixed split of the project's copy of AlpacaEval (`eval` rows are held out). */
  readonly split: 'train' | 'eval';
  readonly generator_1: string;
  readonly generator_2: string;
}

/**
 * Five real rows, copied verbatim from AlpacaEval (github.com/tatsu-lab/alpaca_eval at commit cd543a1,
 * `results/<model>/alpaca_eval_gpt4/annotations.json`: GPT-4's verdict between text-davinci-003 and
 * another model on the AlpacaEval instructions), as shipped in the project's
 * `packages/data/datasets/alpaca_eval` (ids 113, 448, 50, 370, 663). Licence: data CC BY-NC 4.0.
 * Chosen short; they cover both winners, a draw and an `eval`-split row.
 */
export const ALPACA_EVAL_PAIRS: readonly PreferenceRowFixture[] = [
  {
    id: 113,
    split: 'train',
    instruction: 'What color is the sky',
    input: '',
    output_1: 'Blue',
    output_2:
      'The sky is typically blue, but it can also appear to be orange, red, or purple due to the presence of dust or clouds.',
    preference: 2,
    generator_1: 'text_davinci_003',
    generator_2: 'alpaca-7b',
  },
  {
    id: 448,
    split: 'train',
    instruction: 'Suppose I have 12 eggs. I drop 2 and eat 5. How many eggs do I have left?',
    input: '',
    output_1: '5 eggs',
    output_2: 'You have 7 eggs left.',
    preference: 2,
    generator_1: 'text_davinci_003',
    generator_2: 'alpaca-7b',
  },
  {
    id: 50,
    split: 'train',
    instruction: 'What year was the Yamato Battleship built?',
    input: '',
    output_1: 'The Yamato Battleship was built in 1941.',
    output_2: 'The Yamato Battleship was built in 1940.',
    preference: 1,
    generator_1: 'text_davinci_003',
    generator_2: 'alpaca-7b',
  },
  {
    id: 370,
    split: 'train',
    instruction: 'What is the capital of Australia?',
    input: '',
    output_1: 'The capital of Australia is Canberra.',
    output_2: 'The capital of Australia is Canberra.',
    preference: 0,
    generator_1: 'text_davinci_003',
    generator_2: 'alpaca-7b',
  },
  {
    id: 663,
    split: 'eval',
    instruction: 'Convert the given description to a bash command.\n\nread the first 10 lines from f',
    input: '',
    output_1: 'head -n 10 f',
    output_2:
      'To read the first 10 lines from a file named "f" using a Bash command, you can use the head command like this:\n\n`head -n 10 f`',
    preference: 1,
    generator_1: 'text_davinci_003',
    generator_2: 'LMCocktail-10.7B-v1',
  },
];

function rngOf(seed: number | Rng): Rng {
  return typeof seed === 'number' ? new Rng(seed) : seed;
}

/** A float32 tensor of normal deviates (default N(0, 1)) drawn from `seed` (a number or an `Rng`). */
export function randomNormalTensor(
  shape: readonly number[],
  seed: number | Rng,
  std = 1,
  mean = 0,
): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rngOf(seed).normalArray(size, std, mean), [...shape], 'float32');
}

/** A float32 tensor of uniform deviates in [low, high) drawn from `seed`. */
export function randomUniformTensor(
  shape: readonly number[],
  seed: number | Rng,
  low = 0,
  high = 1,
): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rngOf(seed).uniformArray(size, low, high), [...shape], 'float32');
}

/**
 * A k × B array of rewards (member-major, like `[k, B]` tensors), N(0, std) rounded to float32 so
 * that the array and tensor paths see the same numbers.
 */
export function randomRewards(k: number, batch: number, seed: number | Rng, std = 1): number[][] {
  const rng = rngOf(seed);
  return Array.from({ length: k }, () => Array.from(rng.normalArray(batch, std)));
}

/**
 * Throws when `actual` and `expected` differ anywhere by more than `atol + rtol·|expected|`, naming the
 * first index that differs. NaN equals NaN; ±Infinity must match exactly.
 */
export function expectArraysClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: { atol?: number; rtol?: number } = {},
): void {
  const atol = tolerance.atol ?? 1e-5;
  const rtol = tolerance.rtol ?? 1e-5;
  if (actual.length !== expected.length) {
    throw new Error(`arrays differ in length: got ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a === e) continue;
    } else if (Math.abs(a - e) <= atol + rtol * Math.abs(e)) {
      continue;
    }
    throw new Error(
      `arrays differ at index ${i}: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol}); got [${preview(actual)}], expected [${preview(expected)}]`,
    );
  }
}

function preview(values: ArrayLike<number>): string {
  const shown = Array.from(values).slice(0, 8).join(', ');
  return values.length > 8 ? `${shown}, … (${values.length} values)` : shown;
}
