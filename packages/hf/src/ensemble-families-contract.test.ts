/**
 * `ensembleArchitectureContract` on a Llama-family nano backbone (GQA, head_dim ≠ D/H, SwiGLU, RMSNorm, RoPE,
 * no biases). The suite builds every case on its own nano GPT config and takes no config, so each built-in
 * architecture is wrapped to build on the Llama config instead (same name, so the suite's checkpoint round
 * trip finds it; `expectedParamCounts` is handed this config's M). Everything else is the contract unchanged.
 */
import { type GptConfig, gptParameterShapes, paramCount, resolveGptConfig } from '@quorum/backbone';
import { projectTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, type EnsembleArchitecture } from '@quorum/ensemble';
import { ensembleArchitectureContract } from '@quorum/ensemble/testing';
import { describe, expect, it } from 'vitest';

/** The contract's nano size (d 16, 2 layers, context 32) in the Llama layout. */
const llamaNano: GptConfig = resolveGptConfig({
  vocabSize: projectTokenizer().vocabSize,
  contextLength: 32,
  dModel: 16,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 8,
  positional: 'rope',
  norm: 'rmsnorm',
  mlp: 'swiglu',
  mlpHidden: 24,
  attnBias: 'none',
  mlpBias: false,
});

function onLlama(arch: EnsembleArchitecture): EnsembleArchitecture {
  const expected = arch.expectedParamCounts;
  return {
    name: arch.name,
    build: (context) => {
      // the suite's own config, swapped for the Llama one (a loaded checkpoint already carries it)
      expect(context.gptConfig.vocabSize).toBe(llamaNano.vocabSize);
      return arch.build({ ...context, gptConfig: llamaNano });
    },
    ...(expected === undefined
      ? {}
      : { expectedParamCounts: (sizes) => expected({ ...sizes, M: paramCount(llamaNano) }) }),
  };
}

describe('the Llama nano config', () => {
  it('has the family layers the contract should exercise', () => {
    const shapes = gptParameterShapes(llamaNano);
    expect(shapes['h.0.mlp.gate.w']).toEqual([16, 24]);
    expect(shapes['h.0.attn.k.w']).toEqual([16, 16]);
    expect(shapes['h.0.attn.q.w']).toEqual([16, 32]);
    expect(Object.keys(shapes).some((n) => n.endsWith('.b'))).toBe(false);
  });
});

const registry = builtinArchitectureRegistry();
ensembleArchitectureContract.run(
  registry.names().map((name) => ({
    name: `${name} on a Llama nano backbone`,
    create: () => onLlama(registry.create(name)),
  })),
);
