/**
 * `independent`: k full reward models (transformer + head each), trained one after another with their
 * own seeds and data orders (the paper's Algorithm 1, option 1). Parameters: k(M + L). Scoring runs the
 * k models in turn, so it costs k times `single`.
 */

import { type GptParams, gptLastHidden } from '@quorum/backbone';
import type { Rng } from '@quorum/core';
import { type MultiHead, multiHeadRewards } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import type {
  BuildContext,
  PhaseFeatures,
  TokenBatch,
  TrainableEnsemble,
  TrainingPhase,
} from '../architecture.js';
import {
  backboneVariables,
  countParameters,
  disposeVariables,
  headVariables,
  makeBackbone,
  makeHeads,
} from './common.js';

export function buildIndependent(context: BuildContext): TrainableEnsemble {
  const { gptConfig: config, members: k, rng } = context;
  const backbones: GptParams[] = [];
  const heads: MultiHead[] = [];
  for (let m = 0; m < k; m++) {
    // Each member draws its own initialisation (identical backbones when starting from SFT, as in the paper).
    backbones.push(makeBackbone(context, rng.fork(`member-${m}/backbone`)));
    heads.push(makeHeads(config.dModel, 1, rng.fork(`member-${m}`)));
  }
  const memberVars = (m: number): Record<string, tf.Variable> => ({
    ...backboneVariables(backbones[m] as GptParams, `member-${m}.`),
    ...headVariables(heads[m] as MultiHead, `member-${m}.head`),
  });
  const memberReward = (m: number, batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const last = gptLastHidden(backbones[m] as GptParams, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      const h = heads[m] as MultiHead;
      return multiHeadRewards(h.w, h.b, last); // [1, B]
    });
  const memberFeatures = (m: number, batch: TokenBatch, dropoutRng: Rng | undefined): PhaseFeatures =>
    tf.tidy(() => {
      const last = gptLastHidden(backbones[m] as GptParams, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      const h = heads[m] as MultiHead;
      return { rewards: multiHeadRewards(h.w, h.b, last), hidden: last, headWeights: h.w }; // [1, B]
    });
  const M = countParameters(backboneVariables(backbones[0] as GptParams));
  const perMember = M + config.dModel + 1;
  const phases: TrainingPhase[] = Array.from({ length: k }, (_, m) => ({
    name: `member-${m}`,
    kind: 'full' as const,
    dataShare: [0, 1] as const,
    orderLabel: `member-${m}`,
    members: [m],
    sharedTrunk: false,
    variables: () => memberVars(m),
    rewards: (batch: TokenBatch, dropoutRng: Rng | undefined) => memberReward(m, batch, dropoutRng),
    features: (batch: TokenBatch, dropoutRng: Rng | undefined) => memberFeatures(m, batch, dropoutRng),
  }));
  return {
    architecture: 'independent',
    members: k,
    gptConfig: config,
    options: {},
    score: (batch) =>
      tf.tidy(
        () =>
          tf.concat(
            Array.from({ length: k }, (_, m) => memberReward(m, batch, undefined)),
            0,
          ) as tf.Tensor2D,
      ), // [k, B]
    phases: () => phases,
    tensorFiles: () => {
      const files: Record<string, Record<string, tf.Variable>> = {};
      for (let m = 0; m < k; m++) {
        files[`member-${m}/backbone.safetensors`] = backboneVariables(
          backbones[m] as GptParams,
          `member-${m}.`,
        );
      }
      files['heads.safetensors'] = Object.assign(
        {},
        ...heads.map((h, m) => headVariables(h, `member-${m}.head`)),
      );
      return files;
    },
    paramCounts: () => ({
      total: k * perMember,
      trainable: k * perMember,
      byPhase: Object.fromEntries(phases.map((p) => [p.name, perMember])),
      backbone: M,
      head: config.dModel + 1,
      adapter: 0,
      members: k,
    }),
    dispose: () => {
      for (let m = 0; m < k; m++) disposeVariables(memberVars(m));
    },
  };
}
