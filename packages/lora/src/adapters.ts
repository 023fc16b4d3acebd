/**
 * k LoRA adapters stored with a member dimension and run in ONE batched forward pass.
 *
 * Each adapted site (layer, module) holds A [k, in, r] and B [k, r, out]. The backbone runs with
 * `expand: { members: k, atLayer: firstAdaptedLayer }`, so from that block on every linear layer sees
 * x [k·N, in] member-major (N = B·T rows); the hook adds scale · (x_m A_m) B_m for every member m at once
 * with two batched matmuls. Blocks below the first adapted layer run once and are shared by all members.
 *
 * Initialisation follows PEFT (`init_lora_weights=True`): A is Kaiming-uniform with a = √5, i.e.
 * U(−1/√in, 1/√in), and B is zero, so a fresh adapter leaves the model unchanged.
 */
import type {
  GptBlockParams,
  GptConfig,
  GptForwardOptions,
  GptParams,
  LinearHook,
  LinearModule,
  LinearSite,
} from '@quorum/backbone';
import { ConfigError, type Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { adaptedSites, firstAdaptedLayer, type LoraConfig, type LoraSite, sitePrefix } from './config.js';

/** One adapted linear layer's k adapters. */
export interface LoraSiteAdapter extends LoraSite {
  readonly a: tf.Variable; // [k, in, r]
  readonly b: tf.Variable; // [k, r, out]
}

export interface LoraAdapters {
  /** k, the ensemble size. */
  readonly members: number;
  readonly config: LoraConfig;
  /** Pass as `expand.atLayer`: the blocks below it are shared by every member. */
  readonly firstLayer: number;
  readonly sites: readonly LoraSiteAdapter[];
}

/** A trainable variable holding `t`'s values; `t` is disposed (tf.variable alone would keep it alive). */
export function toVariable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/** The factor alpha / rank applied to every adapter update. */
export function loraScale(config: LoraConfig): number {
  return config.alpha / config.rank;
}

function checkMembers(members: number, field: string): void {
  if (!Number.isInteger(members) || members < 1) {
    throw new ConfigError(`${field} must be a positive integer, got ${members}`, {
      location: { field },
      hint: 'pass the ensemble size k (e.g. 3)',
    });
  }
}

/**
 * k fresh adapters for every site the config adapts. Member m's A at a site is drawn from
 * `rng.fork('member-<m>/lora/<site>')`, so a member's init does not depend on k or on the other sites.
 */
export function initLoraAdapters(gpt: GptConfig, lora: LoraConfig, members: number, rng: Rng): LoraAdapters {
  checkMembers(members, 'members');
  const r = lora.rank;
  const sites = adaptedSites(gpt, lora).map((site): LoraSiteAdapter => {
    const { inDim, outDim } = site;
    const bound = 1 / Math.sqrt(inDim);
    const a = new Float32Array(members * inDim * r);
    for (let m = 0; m < members; m++) {
      const draw = rng.fork(`member-${m}/lora/${sitePrefix(site.layer, site.module)}`);
      a.set(draw.uniformArray(inDim * r, -bound, bound), m * inDim * r);
    }
    return {
      ...site,
      a: toVariable(tf.tensor3d(a, [members, inDim, r])), // [k, in, r]
      b: toVariable(tf.zeros([members, r, outDim])), // [k, r, out]
    };
  });
  return { members, config: lora, firstLayer: firstAdaptedLayer(gpt, lora), sites };
}

/**
 * The adapters' tensor names, as the `lora` architecture saves them in `adapters.safetensors` (beside its
 * heads `heads.w` [D, k], `heads.b` [k]): `h.<l>.attn.q.lora_A` [k, in, r], `h.<l>.mlp.fc.lora_B` [k, r, out].
 */
export function namedAdapterParameters(adapters: LoraAdapters): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const s of adapters.sites) {
    const p = sitePrefix(s.layer, s.module);
    out[`${p}.lora_A`] = s.a;
    out[`${p}.lora_B`] = s.b;
  }
  return out;
}

/** Every trainable adapter variable (pass to an optimizer / tf.variableGrads; the base stays frozen). */
export function adapterVariables(adapters: LoraAdapters): tf.Variable[] {
  return adapters.sites.flatMap((s) => [s.a, s.b]);
}

export function disposeLoraAdapters(adapters: LoraAdapters): void {
  for (const v of adapterVariables(adapters)) v.dispose();
}

export interface LoraHookOptions {
  /**
   * Run ONE member's adapter on an unexpanded batch (x [N, in]); by default all k members run at once on a
   * member-expanded batch (x [k·N, in]).
   */
  readonly member?: number | undefined;
  /** Training mode: when config.dropout > 0, dropout on the LoRA input is seeded from this stream. */
  readonly dropoutRng?: Rng | undefined;
}

function checkMember(adapters: LoraAdapters, member: number): void {
  if (!Number.isInteger(member) || member < 0 || member >= adapters.members) {
    throw new ConfigError(`member ${member} is outside 0…${adapters.members - 1}`, {
      location: { field: 'member' },
      hint: `the adapters hold ${adapters.members} members`,
    });
  }
}

function siteKey(layer: number, module: LinearModule): string {
  return `${layer}.${module}`;
}

/**
 * The backbone's linear hook: y + scale · (dropout(x) A) B at adapted sites, y unchanged elsewhere.
 * Run the backbone with `expand: { members: k, atLayer: adapters.firstLayer }` (or with `member` set and
 * no expansion).
 */
export function loraLinearHook(adapters: LoraAdapters, options: LoraHookOptions = {}): LinearHook {
  const { member, dropoutRng } = options;
  if (member !== undefined) checkMember(adapters, member);
  const k = adapters.members;
  const scale = loraScale(adapters.config);
  const rate = adapters.config.dropout;
  const bySite = new Map(adapters.sites.map((s) => [siteKey(s.layer, s.module), s]));
  return (site: LinearSite, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => {
    const s = bySite.get(siteKey(site.layer, site.module));
    if (s === undefined) return y;
    const [rows, inDim] = x.shape;
    if (inDim !== s.inDim) {
      throw new ConfigError(
        `layer ${site.layer} ${site.module} input has width ${inDim}, its adapter ${s.inDim}`,
        {
          location: { field: 'adapters' },
          hint: 'the adapters were made for another model config',
        },
      );
    }
    if (member === undefined && rows % k !== 0) {
      throw new ConfigError(
        `layer ${site.layer} ${site.module} got ${rows} rows, not a multiple of k = ${k}`,
        {
          location: { field: 'expand' },
          hint: `run the backbone with expand: { members: ${k}, atLayer: ${adapters.firstLayer} }`,
        },
      );
    }
    const seed = dropoutRng !== undefined && rate > 0 ? dropoutRng.nextUint32() : undefined;
    return tf.tidy(() => {
      const xin = seed === undefined ? x : (tf.dropout(x, rate, undefined, seed) as tf.Tensor2D); // [rows, in]
      if (member !== undefined) {
        const a = tf.reshape(tf.slice(s.a, [member, 0, 0], [1, -1, -1]), [s.inDim, -1]) as tf.Tensor2D; // [in, r]
        const b = tf.reshape(tf.slice(s.b, [member, 0, 0], [1, -1, -1]), [-1, s.outDim]) as tf.Tensor2D; // [r, out]
        const delta = tf.matMul(tf.matMul(xin, a), tf.mul(b, scale)); // [N, out]; α/r folded into B [r, out]
        return tf.add(y, delta) as tf.Tensor2D; // [N, out]
      }
      const n = rows / k;
      const x3 = tf.reshape(xin, [k, n, inDim]) as tf.Tensor3D; // [k, N, in]
      const xa = tf.matMul(x3, s.a as tf.Tensor3D); // [k, N, r]
      // α/r scales B [k, r, out] (small) instead of the [k, N, out] product.
      const xab = tf.matMul(xa, tf.mul(s.b, scale) as tf.Tensor3D); // [k, N, out]
      const delta = tf.reshape(xab, [rows, s.outDim]); // [k·N, out]
      return tf.add(y, delta) as tf.Tensor2D; // [k·N, out]
    });
  };
}

export interface LoraForwardOptions {
  /** Training mode: when config.dropout > 0, dropout on the LoRA input is seeded from this stream. */
  readonly dropoutRng?: Rng | undefined;
  /**
   * Merge the adapters for this pass: each adapted layer runs member m's rows through W + scale·A_m·B_m
   * (formed once per call, k·in·r·out flops) in ONE batched matmul, instead of the shared matmul plus two
   * rank-r products and an add per member. Same values up to float rounding; fastest for scoring.
   * Gradients still reach A and B, but through a full [k, in, out] weight gradient: train with the
   * default (factored) form. Cannot be combined with LoRA dropout.
   */
  readonly merged?: boolean | undefined;
}

/**
 * Backbone options that run all k members in one pass: the batched hook (or, with `merged`, per-member
 * merged weights) plus `expand: { members: k, atLayer: firstLayer }`. The output has k·B rows, member-major.
 */
export function loraForwardOptions(
  adapters: LoraAdapters,
  options: LoraForwardOptions = {},
): GptForwardOptions {
  const expand = { members: adapters.members, atLayer: adapters.firstLayer };
  if (options.merged !== true) {
    return { linearHook: loraLinearHook(adapters, { dropoutRng: options.dropoutRng }), expand };
  }
  if (options.dropoutRng !== undefined && adapters.config.dropout > 0) {
    throw new ConfigError(`merged adapters cannot apply LoRA dropout (${adapters.config.dropout})`, {
      location: { field: 'merged' },
      hint: 'train with the factored form (merged: false); merge for scoring, where dropout is off',
    });
  }
  const scale = loraScale(adapters.config);
  const bySite = new Map(adapters.sites.map((s) => [siteKey(s.layer, s.module), s]));
  return {
    memberWeights: (site: LinearSite, w: tf.Tensor2D): tf.Tensor3D | undefined => {
      const s = bySite.get(siteKey(site.layer, site.module));
      if (s === undefined) return undefined;
      if (w.shape[0] !== s.inDim || w.shape[1] !== s.outDim) {
        throw new ConfigError(
          `layer ${site.layer} ${site.module} weight is [${w.shape.join(', ')}], its adapter [${s.inDim}, ${s.outDim}]`,
          { location: { field: 'adapters' }, hint: 'the adapters were made for another model config' },
        );
      }
      return tf.tidy(
        () => tf.add(w, tf.matMul(s.a, tf.mul(s.b, scale) as tf.Tensor3D)) as tf.Tensor3D, // [in, out] + [k, in, r]·[k, r, out] → [k, in, out]
      );
    },
    expand,
  };
}

function baseWeight(params: GptParams, site: LoraSite): tf.Variable {
  const blk = params.blocks[site.layer] as GptBlockParams | undefined;
  const w = blk?.[site.module]?.w; // gate is undefined in a GELU model
  if (w === undefined || w.shape[0] !== site.inDim || w.shape[1] !== site.outDim) {
    throw new ConfigError(
      `base weight ${sitePrefix(site.layer, site.module)}.w is ${w === undefined ? 'missing' : `[${w.shape.join(', ')}]`}, the adapter needs [${site.inDim}, ${site.outDim}]`,
      { location: { field: 'adapters' }, hint: 'merge adapters only into the base model they were made for' },
    );
  }
  return w;
}

function applyMember(params: GptParams, adapters: LoraAdapters, member: number, sign: 1 | -1): void {
  checkMember(adapters, member);
  const weights = adapters.sites.map((s) => baseWeight(params, s)); // check every site before changing one
  const scale = sign * loraScale(adapters.config);
  adapters.sites.forEach((s, i) => {
    const w = weights[i] as tf.Variable;
    tf.tidy(() => {
      const a = tf.reshape(tf.slice(s.a, [member, 0, 0], [1, -1, -1]), [s.inDim, -1]) as tf.Tensor2D; // [in, r]
      const b = tf.reshape(tf.slice(s.b, [member, 0, 0], [1, -1, -1]), [-1, s.outDim]) as tf.Tensor2D; // [r, out]
      w.assign(tf.add(w, tf.mul(tf.matMul(a, b), scale))); // [in, out]
    });
  });
}

/**
 * Adds scale · A_m B_m to every adapted base weight, so member m runs with no hook and no extra cost.
 * The base is changed in place: merge one member at a time and `unmergeMember` before merging another.
 */
export function mergeMember(params: GptParams, adapters: LoraAdapters, member: number): void {
  applyMember(params, adapters, member, 1);
}

/** Subtracts what `mergeMember` added (restores the base weights up to float rounding). */
export function unmergeMember(params: GptParams, adapters: LoraAdapters, member: number): void {
  applyMember(params, adapters, member, -1);
}
