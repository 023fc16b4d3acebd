/**
 * `warm`: weight-averaged reward models (WARM, Ramé et al. 2024).
 *
 * Training is `independent`'s: k full reward models (transformer + head), one phase each, each with its
 * own data order and dropout stream. Unlike `independent`, every member starts from the *same* weights
 * (the SFT transformer, or one scratch init, and one head init): fine-tunings of a shared initialisation
 * stay linearly mode connected, which is what makes their average a good model. After the last phase the
 * trainer calls `finalize()`, which replaces the k members by the element-wise mean of their weights.
 *
 * What `members` means here:
 * - while training, `members` is k and `score` returns the k members' rewards `[k, B]` (so the ensemble
 *   can be evaluated and checkpointed like `independent`);
 * - after `finalize()`, `members` is 1 and `score` returns `[1, B]`: the averaged model scores as a
 *   single member, at the cost of one forward pass. A saved finalized model is a 1-member `warm`
 *   checkpoint whose options record `averagedFrom: k`.
 *
 * Parameters (M transformer, L = D + 1 head): k(M + L) while training, each phase training M + L;
 * M + L after `finalize()`. Aggregation rules see one member, so `lcb` = `mean` and the std is 0: WARM
 * buys robustness by averaging weights, not by measuring disagreement.
 */
import { type GptParams, gptLastHidden, loadGptParameters, namedParameters } from '@quorum/backbone';
import { ConfigError, defineStrategy, type Rng } from '@quorum/core';
import {
  type BuildContext,
  backboneVariables,
  countParameters,
  type EnsembleArchitecture,
  headVariables,
  makeBackbone,
  makeHeads,
  type TokenBatch,
  type TrainableEnsemble,
  type TrainingPhase,
} from '@quorum/ensemble';
import { type MultiHead, multiHeadRewards } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

/**
 * Options of `warm`. `averagedFrom` is not a training knob: `finalize()` writes it into the ensemble's
 * options (and so into quorum.json) to record how many trained members the saved model averages.
 */
export const warmOptions = z
  .object({
    averagedFrom: z
      .number()
      .int()
      .min(2)
      .optional()
      .describe('set by finalize(): how many trained members were averaged (a finalized model has 1 member)'),
  })
  .strict();

export type WarmOptions = z.output<typeof warmOptions>;

/**
 * The element-wise (optionally weighted) mean of k models given as named tensors. Every model must have
 * the same names and shapes. Weights default to 1/k and are normalised to sum to 1. Returns new tensors
 * the caller disposes; the inputs are left alone.
 */
export function averageWeights(
  models: readonly Readonly<Record<string, tf.Tensor>>[],
  weights?: readonly number[],
): Record<string, tf.Tensor> {
  const k = models.length;
  if (k < 1) {
    throw new ConfigError('averageWeights needs at least one model, got none', {
      hint: 'pass the k members’ named weights',
    });
  }
  const w = weights ?? new Array<number>(k).fill(1);
  if (w.length !== k || w.some((x) => !Number.isFinite(x) || x < 0) || w.reduce((a, b) => a + b, 0) <= 0) {
    throw new ConfigError(
      `averageWeights: weights [${w.join(', ')}] must be ${k} finite non-negative numbers with a positive sum`,
      { hint: 'omit the weights for a uniform average' },
    );
  }
  const total = w.reduce((a, b) => a + b, 0);
  const first = models[0] as Readonly<Record<string, tf.Tensor>>;
  const names = Object.keys(first);
  models.forEach((model, m) => {
    const own = Object.keys(model);
    const missing = names.filter((n) => !(n in model));
    const extra = own.filter((n) => !(n in first));
    if (missing.length > 0 || extra.length > 0) {
      throw new ConfigError(
        `averageWeights: model ${m} does not match model 0 (missing: ${missing.join(', ') || 'none'}; extra: ${extra.join(', ') || 'none'})`,
        { hint: 'only models of one architecture and config can be averaged' },
      );
    }
    for (const n of names) {
      const a = (first[n] as tf.Tensor).shape;
      const b = (model[n] as tf.Tensor).shape;
      if (!tf.util.arraysEqual(a, b)) {
        throw new ConfigError(
          `averageWeights: "${n}" is [${b.join(', ')}] in model ${m} but [${a.join(', ')}] in model 0`,
          { hint: 'only models of one architecture and config can be averaged' },
        );
      }
    }
  });
  const out: Record<string, tf.Tensor> = {};
  for (const n of names) {
    out[n] = tf.tidy(() =>
      tf.addN(models.map((model, m) => tf.mul(model[n] as tf.Tensor, (w[m] as number) / total))),
    );
  }
  return out;
}

/** One reward model: a transformer and a one-member head ([D, 1], [1]). */
interface Member {
  readonly backbone: GptParams;
  readonly head: MultiHead;
}

function memberVariables(member: Member, prefix: string): Record<string, tf.Variable> {
  return {
    ...backboneVariables(member.backbone, prefix),
    ...headVariables(member.head, `${prefix}head`),
  };
}

function disposeMember(member: Member): void {
  for (const v of Object.values(memberVariables(member, ''))) v.dispose();
}

/**
 * Builds a `warm` ensemble of `context.members` models that all start from the same weights. Tensor
 * names: with k > 1 members `member-m.<param>` in `member-m/backbone.safetensors` and `member-m.head.w|b`
 * in `heads.safetensors` (as `independent`); with one member (k = 1, or after `finalize()`) `<param>` in
 * `backbone.safetensors` and `head.w|b` in `heads.safetensors`.
 */
export function buildWarm(context: BuildContext, options: WarmOptions = {}): TrainableEnsemble {
  const { gptConfig: config, members: k, rng } = context;
  if (options.averagedFrom !== undefined && k !== 1) {
    throw new ConfigError(
      `warm: averagedFrom (${options.averagedFrom}) marks a finalized model, which has 1 member, got ${k}`,
      {
        location: { field: 'members' },
        hint: 'drop averagedFrom when training: finalize() sets it after the members are averaged',
      },
    );
  }
  // One initialisation, copied into every member: averaging needs a shared starting point.
  const init: Member = {
    backbone: makeBackbone(context, rng.fork('backbone')),
    head: makeHeads(config.dModel, 1, rng.fork('head')),
  };
  const members: Member[] = [init];
  for (let m = 1; m < k; m++) {
    members.push({
      backbone: loadGptParameters(config, namedParameters(init.backbone)),
      head: {
        w: tf.tidy(() => tf.variable(tf.clone(init.head.w))) as unknown as tf.Tensor2D, // [D, 1]
        b: tf.tidy(() => tf.variable(tf.clone(init.head.b))) as unknown as tf.Tensor1D, // [1]
      },
    });
  }
  let averagedFrom = options.averagedFrom;
  /** Member m, or the averaged model once finalize() has run. */
  const current = (m: number): Member => members[Math.min(m, members.length - 1)] as Member;
  // Phase variable names keep the build-time prefix, so they stay stable across finalize().
  const varsOf = (m: number): Record<string, tf.Variable> =>
    memberVariables(current(m), k === 1 ? '' : `member-${m}.`);

  const memberReward = (m: number, batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const { backbone, head } = current(m);
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      return multiHeadRewards(head.w, head.b, last); // [1, B]
    });

  const M = countParameters(backboneVariables(init.backbone));
  const perMember = M + config.dModel + 1;
  // After finalize() a phase's variables are the averaged model's (they are what its training became).
  const phases: TrainingPhase[] = Array.from({ length: k }, (_, m) => ({
    name: `member-${m}`,
    kind: 'full' as const,
    dataShare: [0, 1] as const,
    orderLabel: `member-${m}`,
    members: [m],
    sharedTrunk: false,
    variables: () => varsOf(m),
    rewards: (batch: TokenBatch, dropoutRng: Rng | undefined) => memberReward(m, batch, dropoutRng),
  }));

  return {
    architecture: 'warm',
    get members(): number {
      return members.length;
    },
    gptConfig: config,
    get options(): Readonly<Record<string, unknown>> {
      return averagedFrom === undefined ? {} : { averagedFrom };
    },
    score: (batch) =>
      tf.tidy(
        () =>
          tf.concat(
            members.map((_, m) => memberReward(m, batch, undefined)),
            0,
          ) as tf.Tensor2D,
      ), // [members, B]
    phases: () => phases,
    tensorFiles: () => {
      if (members.length === 1) {
        const only = members[0] as Member;
        return {
          'backbone.safetensors': backboneVariables(only.backbone),
          'heads.safetensors': headVariables(only.head, 'head'),
        };
      }
      const files: Record<string, Record<string, tf.Variable>> = {};
      members.forEach((member, m) => {
        files[`member-${m}/backbone.safetensors`] = backboneVariables(member.backbone, `member-${m}.`);
      });
      files['heads.safetensors'] = Object.assign(
        {},
        ...members.map((member, m) => headVariables(member.head, `member-${m}.head`)),
      );
      return files;
    },
    finalize: () => {
      if (members.length === 1) return; // nothing to average
      const named = members.map((member) => memberVariables(member, ''));
      const mean = averageWeights(named);
      const target = named[0] as Record<string, tf.Variable>;
      for (const [name, t] of Object.entries(mean)) {
        (target[name] as tf.Variable).assign(t);
        t.dispose();
      }
      averagedFrom = members.length;
      for (const member of members.splice(1)) disposeMember(member);
    },
    paramCounts: () => {
      const n = members.length;
      return {
        total: n * perMember,
        trainable: n * perMember,
        byPhase: Object.fromEntries(phases.map((p) => [p.name, perMember])),
        backbone: M,
        head: config.dModel + 1,
        adapter: 0,
        members: n,
      };
    },
    dispose: () => {
      for (const member of members.splice(0)) disposeMember(member);
    },
  };
}

/** The registry entry: `quorum train-rm --arch warm --members K` (with this plugin loaded). */
export const warmStrategy = defineStrategy({
  name: 'warm',
  description:
    'WARM: k reward models from one init, trained apart, then weight-averaged into one (M+L to score)',
  source: '@quorum-examples/plugin-warm',
  options: warmOptions,
  create: (options): EnsembleArchitecture => ({
    name: 'warm',
    build: (context) => buildWarm(context, options),
    expectedParamCounts: ({ M, L, k }) => ({ total: k * (M + L) }),
  }),
});
