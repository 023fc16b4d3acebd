// shared-heads: one shared transformer with k linear heads, as a plugin architecture (M + kL parameters).
import { gptLastHidden } from '@quorum/backbone';
import { defineStrategy, type Rng, strategyModule } from '@quorum/core';
import {
  type BuildContext,
  backboneVariables,
  countParameters,
  EnsembleArchitecture,
  headVariables,
  makeBackbone,
  makeHeads,
  type TokenBatch,
  type TrainableEnsemble,
} from '@quorum/ensemble';
import { multiHeadRewards } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export function buildSharedHeads(context: BuildContext): TrainableEnsemble {
  const { gptConfig: config, members: k, rng } = context;
  const backbone = makeBackbone(context, rng.fork('backbone')); // from the SFT weights when given
  const heads = makeHeads(config.dModel, k, rng); // w [D, k], b [k]
  const backboneVars = backboneVariables(backbone);
  const headVars = headVariables(heads);
  const rewards = (batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      return multiHeadRewards(heads.w, heads.b, last); // [k, B]
    });
  const M = countParameters(backboneVars);
  const total = M + countParameters(headVars);
  return {
    architecture: 'shared-heads',
    members: k,
    gptConfig: config,
    options: {},
    score: (batch) => rewards(batch, undefined), // [k, B]
    // One phase: every variable trains on all pairs; members weight pairs by their own bootstrap mask.
    phases: () => [
      {
        name: 'members',
        kind: 'full',
        dataShare: [0, 1],
        orderLabel: 'members',
        members: Array.from({ length: k }, (_, m) => m),
        sharedTrunk: k > 1,
        variables: () => ({ ...backboneVars, ...headVars }),
        rewards,
      },
    ],
    // Unique variable names, grouped by checkpoint file.
    tensorFiles: () => ({ 'backbone.safetensors': backboneVars, 'heads.safetensors': headVars }),
    paramCounts: () => ({
      total,
      trainable: total,
      byPhase: { members: total },
      backbone: M,
      head: config.dModel + 1,
      adapter: 0,
      members: k,
    }),
    dispose: () => {
      for (const v of [...Object.values(backboneVars), ...Object.values(headVars)]) v.dispose();
    },
  };
}

export const sharedHeadsStrategy = defineStrategy({
  name: 'shared-heads',
  description: 'one shared transformer, k linear heads: M + kL parameters',
  source: 'shared-heads',
  options: z.object({}).strict(),
  create: (): EnsembleArchitecture => ({
    name: 'shared-heads',
    build: buildSharedHeads,
    expectedParamCounts: ({ M, L, k }) => ({ total: M + k * L }), // checked by the contract suite
  }),
});

export default strategyModule({
  strategies: [{ point: EnsembleArchitecture as never, definitions: [sharedHeadsStrategy] as never }],
});
