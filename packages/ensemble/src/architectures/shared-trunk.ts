/**
 * `single` (k = 1) and `linear-heads` (k heads): one transformer whose last-token hidden state feeds k
 * linear heads computed as one D→k matmul. Parameters: M + kL. Members differ by their head's
 * initialisation and by their own bootstrap weights over each batch (the trainer applies them).
 */

import { gptLastHidden } from '@quorum/backbone';
import { ConfigError, type Rng } from '@quorum/core';
import { multiHeadRewards } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import type { BuildContext, PhaseFeatures, TokenBatch, TrainableEnsemble } from '../architecture.js';
import {
  backboneVariables,
  countParameters,
  disposeVariables,
  headVariables,
  makeBackbone,
  makeHeads,
} from './common.js';

export function buildSharedTrunk(name: 'single' | 'linear-heads', context: BuildContext): TrainableEnsemble {
  const { gptConfig: config, members: k, rng } = context;
  if (name === 'single' && k !== 1) {
    throw new ConfigError(`the single architecture has exactly 1 member, got ${k}`, {
      location: { field: 'members' },
      hint: 'use --members 1 with single, or --arch linear-heads for k heads on one transformer',
    });
  }
  const backbone = makeBackbone(context, rng.fork('backbone'));
  const heads = makeHeads(config.dModel, k, rng);
  const backboneVars = backboneVariables(backbone);
  const headVars = headVariables(heads);
  const features = (batch: TokenBatch, dropoutRng: Rng | undefined): PhaseFeatures =>
    tf.tidy(() => {
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      return { rewards: multiHeadRewards(heads.w, heads.b, last), hidden: last, headWeights: heads.w }; // [k, B]
    });
  const rewards = (batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      return multiHeadRewards(heads.w, heads.b, last); // [k, B]
    });
  const M = countParameters(backboneVars);
  const trainable = M + countParameters(headVars);
  return {
    architecture: name,
    members: k,
    gptConfig: config,
    options: {},
    score: (batch) => rewards(batch, undefined),
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
        features,
      },
    ],
    tensorFiles: () => ({ 'backbone.safetensors': backboneVars, 'heads.safetensors': headVars }),
    paramCounts: () => ({
      total: trainable,
      trainable,
      byPhase: { members: trainable },
      backbone: M,
      head: config.dModel + 1,
      adapter: 0,
      members: k,
    }),
    dispose: () => {
      disposeVariables(backboneVars);
      disposeVariables(headVars);
    },
  };
}
