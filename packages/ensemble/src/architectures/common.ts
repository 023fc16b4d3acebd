/** Pieces the built-in architectures share: backbones from SFT or scratch, heads as variables, counting. */

import { type GptParams, initGpt, loadGptParameters, namedParameters } from '@quorum/backbone';
import type { Rng } from '@quorum/core';
import { initMultiHead, type MultiHead } from '@quorum/heads';
import type * as tf from '@tensorflow/tfjs';
import type { BuildContext } from '../architecture.js';

/** A backbone initialised from the SFT weights in the context, or from scratch with `rng`. */
export function makeBackbone(context: BuildContext, rng: Rng): GptParams {
  if (context.initBackbone !== undefined)
    return loadGptParameters(context.gptConfig, context.initBackbone, { allowExtra: true });
  return initGpt(context.gptConfig, rng);
}

/** k trainable reward heads as one [D, k] multi-head; member m's head comes from `rng.fork('member-m/head')`. */
export function makeHeads(dModel: number, k: number, rng: Rng): MultiHead {
  return initMultiHead(dModel, k, rng, { variable: true });
}

/** A multi-head's variables under `prefix` (`heads.w` [D, k], `heads.b` [k]). */
export function headVariables(heads: MultiHead, prefix = 'heads'): Record<string, tf.Variable> {
  return { [`${prefix}.w`]: heads.w as tf.Variable, [`${prefix}.b`]: heads.b as tf.Variable };
}

/** Backbone variables, optionally prefixed (`member-2.` for independent members). */
export function backboneVariables(params: GptParams, prefix = ''): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [name, v] of Object.entries(namedParameters(params))) out[`${prefix}${name}`] = v;
  return out;
}

export function countParameters(vars: Record<string, tf.Variable>): number {
  let n = 0;
  for (const v of Object.values(vars)) n += v.size;
  return n;
}

export function disposeVariables(vars: Record<string, tf.Variable>): void {
  for (const v of Object.values(vars)) v.dispose();
}
