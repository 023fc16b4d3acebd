/** The data package at the DI edge: owns the `dataset-format` point and contributes the built-in formats. */
import { type ContainerModule, strategyModule } from '@quorum/core';
import { alpacaEval } from './alpaca-eval.js';
import { builtinFormatDefinitions, DatasetFormat } from './formats.js';
import { hhRlhf } from './hh-rlhf.js';
import { mtBench } from './mt-bench.js';

export function dataModule(): ContainerModule {
  return strategyModule({
    points: [DatasetFormat],
    strategies: [{ point: DatasetFormat, definitions: builtinFormatDefinitions }],
  });
}

/** The shipped datasets, opened with no path arguments and cached per process. */
export const datasets = { alpacaEval, hhRlhf, mtBench } as const;
