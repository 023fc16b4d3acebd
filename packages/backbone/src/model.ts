/**
 * A GPT-style decoder in plain tfjs ops, the nanoGPT way: pre-norm blocks of causal self-attention and
 * an MLP, learned positions or RoPE, an LM head tied to the token embedding or its own. Config flags
 * choose the family variants: LayerNorm or RMSNorm, GELU (tanh or exact) or SwiGLU MLP, grouped-query
 * attention, partial rotary, parallel residual (GPT-NeoX), and which linear layers have biases.
 *
 * Shapes: B batch, T sequence, D dModel, H query heads, Hkv key/value heads, Dh head size (D / H unless
 * headDim), R rotated dims of a head, F MLP width, V vocab, N = B·T rows (see `gptDims`).
 * Linear layers run as 2-D matmuls on [N, in] and call `options.linearHook` (the adapter hook).
 * Positions come from the mask (cumsum(mask) − 1), so left and right padding give the same hidden
 * states for the real tokens; padded keys are masked out of attention.
 */
import { CheckpointError, ConfigError, type Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { type GptConfig, gptDims, gptParameterShapes } from './config.js';
import { exactGelu, gelu, layerNorm, rmsNorm, silu } from './fused.js';
import { explicitTransposes, linearMatMul, matMul, matMulT } from './matmul.js';

/**
 * The linear layers hooks and member weights see: attention q/k/v/o, then the MLP's `gate` (SwiGLU only),
 * `fc` (SwiGLU's up) and `proj` (down).
 */
export type LinearModule = 'q' | 'k' | 'v' | 'o' | 'gate' | 'fc' | 'proj';

/** Which linear layer a hook call is for. */
export interface LinearSite {
  readonly layer: number;
  readonly module: LinearModule;
}

/**
 * Called for every linear layer with its input `x` [N, in] and base output `y` [N, out]; returns the
 * output to use [N, out]. With member expansion, N = k·B·T rows, member-major.
 */
export type LinearHook = (site: LinearSite, x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor2D;

/** Tile the batch `members` times just before block `atLayer` (0 … nLayers). */
export interface MemberExpansion {
  readonly members: number;
  readonly atLayer: number;
}

export interface GptForwardOptions {
  readonly linearHook?: LinearHook | undefined;
  readonly expand?: MemberExpansion | undefined;
  /** Training mode: when config.dropout > 0, dropout masks are seeded from this stream. */
  readonly dropoutRng?: Rng | undefined;
  /**
   * Per-member weights of a linear layer on member-expanded rows: given the site and its shared weight
   * w [in, out], return W [k, in, out] (member m's rows, x [k·N, in] member-major, use W[m]) or undefined
   * to keep w. One batched matmul per site, e.g. LoRA's merged W + s·A_m·B_m for scoring. Applied
   * before `linearHook`.
   */
  readonly memberWeights?: MemberWeights | undefined;
}

/** See `GptForwardOptions.memberWeights`. */
export type MemberWeights = (site: LinearSite, w: tf.Tensor2D) => tf.Tensor3D | undefined;

/** A linear layer; `b` only when the config gives it a bias (none for Llama, q/k/v for Qwen2). */
interface Linear {
  readonly w: tf.Variable; // [in, out]
  readonly b: tf.Variable | undefined; // [out]
}
/** LayerNorm has gain and bias, RMSNorm only the gain. */
interface Norm {
  readonly g: tf.Variable; // [D]
  readonly b: tf.Variable | undefined; // [D]
}
export interface GptBlockParams {
  readonly ln1: Norm;
  readonly q: Linear; // [D, H·Dh]
  readonly k: Linear; // [D, Hkv·Dh]
  readonly v: Linear; // [D, Hkv·Dh]
  readonly o: Linear; // [H·Dh, D]
  readonly ln2: Norm;
  /** SwiGLU's gate [D, F]; undefined for the GELU MLP. */
  readonly gate: Linear | undefined;
  readonly fc: Linear; // [D, F], SwiGLU's up
  readonly proj: Linear; // [F, D], SwiGLU's down
}

export interface GptParams {
  readonly wte: tf.Variable; // [V, D]
  readonly wpe: tf.Variable | undefined; // [T_ctx, D], learned positions only
  readonly blocks: readonly GptBlockParams[];
  readonly lnf: Norm;
  readonly lmHead: tf.Variable | undefined; // [V, D], untied only
}

/** One layer's cached keys and values, [B, Hkv, T_past, Dh] each. */
export interface KvLayer {
  readonly k: tf.Tensor4D;
  readonly v: tf.Tensor4D;
}

// ---------------------------------------------------------------- parameters

function buildParams(config: GptConfig, make: (name: string, shape: number[]) => tf.Tensor): GptParams {
  const shapes = gptParameterShapes(config);
  // tidy disposes the initial value (tf.variable alone would keep it alive next to the variable).
  const v = (name: string): tf.Variable =>
    tf.tidy(() => tf.variable(make(name, shapes[name] as number[]), true));
  const bias = (name: string): tf.Variable | undefined => (name in shapes ? v(name) : undefined);
  const lin = (p: string): Linear => ({ w: v(`${p}.w`), b: bias(`${p}.b`) });
  const norm = (p: string): Norm => ({ g: v(`${p}.g`), b: bias(`${p}.b`) });
  const blocks: GptBlockParams[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `h.${l}`;
    blocks.push({
      ln1: norm(`${p}.ln_1`),
      q: lin(`${p}.attn.q`),
      k: lin(`${p}.attn.k`),
      v: lin(`${p}.attn.v`),
      o: lin(`${p}.attn.o`),
      ln2: norm(`${p}.ln_2`),
      gate: config.mlp === 'swiglu' ? lin(`${p}.mlp.gate`) : undefined,
      fc: lin(`${p}.mlp.fc`),
      proj: lin(`${p}.mlp.proj`),
    });
  }
  return {
    wte: v('wte'),
    wpe: config.positional === 'learned' ? v('wpe') : undefined,
    blocks,
    lnf: norm('ln_f'),
    lmHead: config.tieEmbeddings ? undefined : v('lm_head.w'),
  };
}

/** GPT-2 initialisation: N(0, 0.02), residual projections N(0, 0.02/√(2L)), zero biases, unit gains. */
export function initGpt(config: GptConfig, rng: Rng): GptParams {
  const residualStd = 0.02 / Math.sqrt(2 * config.nLayers);
  return buildParams(config, (name, shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('.g')) return tf.ones(shape);
    if (name.endsWith('.b')) return tf.zeros(shape);
    const std = name.endsWith('attn.o.w') || name.endsWith('mlp.proj.w') ? residualStd : 0.02;
    return tf.tensor(rng.normalArray(size, std), shape, 'float32');
  });
}

/** Every parameter by its stable name (`wte`, `h.0.attn.q.w`, …), in a fixed order (gptParameterShapes'). */
export function namedParameters(params: GptParams): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = { wte: params.wte };
  if (params.wpe !== undefined) out.wpe = params.wpe;
  const add = (name: string, t: tf.Variable | undefined): void => {
    if (t !== undefined) out[name] = t;
  };
  const addPair = (
    p: string,
    a: 'g' | 'w',
    pair: { g?: tf.Variable; w?: tf.Variable; b?: tf.Variable } | undefined,
  ): void => {
    add(`${p}.${a}`, pair?.[a]);
    add(`${p}.b`, pair?.b);
  };
  params.blocks.forEach((blk, l) => {
    const p = `h.${l}`;
    addPair(`${p}.ln_1`, 'g', blk.ln1);
    for (const m of ['q', 'k', 'v', 'o'] as const) addPair(`${p}.attn.${m}`, 'w', blk[m]);
    addPair(`${p}.ln_2`, 'g', blk.ln2);
    for (const m of ['gate', 'fc', 'proj'] as const) addPair(`${p}.mlp.${m}`, 'w', blk[m]);
  });
  addPair('ln_f', 'g', params.lnf);
  add('lm_head.w', params.lmHead);
  return out;
}

/**
 * New parameters (copies) from named tensors, e.g. a checkpoint. Every tensor the config needs must be
 * present with its shape; unknown names are an error unless `allowExtra`.
 */
export function loadGptParameters(
  config: GptConfig,
  tensors: Record<string, tf.Tensor>,
  options: { allowExtra?: boolean; file?: string } = {},
): GptParams {
  const shapes = gptParameterShapes(config);
  const loc = options.file === undefined ? {} : { location: { file: options.file } };
  for (const [name, shape] of Object.entries(shapes)) {
    const t = tensors[name];
    if (t === undefined) {
      throw new CheckpointError(`tensor "${name}" [${shape.join(', ')}] is missing`, {
        ...loc,
        hint: 'the checkpoint was written for another model config (size, positional, tieEmbeddings or family flags)',
      });
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `tensor "${name}" has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`,
        {
          ...loc,
          hint: 'load it with the config it was trained with (its quorum.json)',
        },
      );
    }
  }
  const extra = Object.keys(tensors).filter((n) => !(n in shapes));
  if (extra.length > 0 && options.allowExtra !== true) {
    throw new CheckpointError(
      `unexpected tensors ${extra
        .slice(0, 5)
        .map((n) => `"${n}"`)
        .join(', ')}`,
      {
        ...loc,
        hint: 'the checkpoint holds more than a backbone; pass { allowExtra: true } to ignore the rest',
      },
    );
  }
  return buildParams(config, (name) => tf.tidy(() => tf.cast(tensors[name] as tf.Tensor, 'float32').clone()));
}

export function disposeGpt(params: GptParams): void {
  for (const v of Object.values(namedParameters(params))) v.dispose();
}

// ---------------------------------------------------------------- building blocks

function norm(x: tf.Tensor2D, p: Norm, config: GptConfig): tf.Tensor2D {
  return p.b === undefined
    ? rmsNorm(x, p.g, config.layerNormEps) // [N, D]
    : layerNorm(x, p.g, p.b, config.layerNormEps); // [N, D]
}

function dropout<T extends tf.Tensor>(x: T, rate: number, rng: Rng | undefined): T {
  if (rng === undefined || rate === 0) return x;
  return tf.dropout(x, rate, undefined, rng.nextUint32()) as T;
}

/** A linear layer with its hook and member weights. */
function linear(
  x: tf.Tensor2D,
  p: Linear,
  site: LinearSite,
  hook: LinearHook | undefined,
  memberWeights: MemberWeights | undefined,
  members: number,
): tf.Tensor2D {
  const wm = memberWeights?.(site, p.w as tf.Tensor2D); // [k, in, out] or undefined
  const y =
    wm === undefined
      ? linearMatMul(x, p.w as tf.Tensor2D, p.b as tf.Tensor1D | undefined) // [N, out]
      : memberLinearMatMul(x, wm, p.b as tf.Tensor1D | undefined, site, members); // [N, out]
  return hook === undefined ? y : hook(site, x, y);
}

/** x [k·N, in] member-major · W [k, in, out] (+ bias [out]) → [k·N, out]: member m's rows use W[m]. */
function memberLinearMatMul(
  x: tf.Tensor2D,
  w: tf.Tensor3D,
  bias: tf.Tensor1D | undefined,
  site: LinearSite,
  members: number,
): tf.Tensor2D {
  const [rows, inDim] = x.shape;
  const [k, wIn, outDim] = w.shape;
  if (k !== members || wIn !== inDim) {
    throw new ConfigError(
      `layer ${site.layer} ${site.module}: member weights [${w.shape.join(', ')}] do not fit input [${rows}, ${inDim}] of ${members} member(s)`,
      {
        location: { field: 'memberWeights' },
        hint:
          members === 1
            ? `this layer runs before the member expansion: set expand: { members: ${k}, atLayer: ≤ ${site.layer} } or return undefined here`
            : `return [${members}, ${inDim}, out] weights (one per member)`,
      },
    );
  }
  const x3 = tf.reshape(x, [k, rows / k, inDim]) as tf.Tensor3D; // [k, N, in]
  const y = explicitTransposes()
    ? bias === undefined
      ? matMul(x3, w)
      : tf.add(matMul(x3, w), bias)
    : tf.fused.matMul({ a: x3, b: w, bias }); // [k, N, out]
  return tf.reshape(y, [rows, outDim]) as tf.Tensor2D; // [k·N, out]
}

interface Rope {
  readonly cos: tf.Tensor4D;
  readonly sin: tf.Tensor4D;
}

/** cos and sin of RoPE angles for the given positions, over the R rotated dims: [B, 1, T, R] each. */
function ropeTables(positions: tf.Tensor2D, config: GptConfig): Rope {
  const [B, T] = positions.shape;
  const R = gptDims(config).R;
  const half = R / 2;
  const invFreq = Float32Array.from({ length: half }, (_, i) => config.ropeTheta ** (-(2 * i) / R));
  const angles = tf.mul(
    tf.reshape(tf.cast(positions, 'float32'), [B, T, 1]),
    tf.tensor3d(invFreq, [1, 1, half]),
  ); // [B, T, Dh/2]
  const emb = tf.reshape(tf.concat([angles, angles], -1), [B, 1, T, R]); // [B, 1, T, R]
  return { cos: tf.cos(emb) as tf.Tensor4D, sin: tf.sin(emb) as tf.Tensor4D };
}

/**
 * x·cos + rotate_half(x)·sin on the first R dims of each head, rotate_half([x1, x2]) = [−x2, x1] (the
 * GPT-NeoX / Llama convention); the other Dh − R dims pass through (NeoX's partial rotary).
 */
function applyRope(x: tf.Tensor4D, rope: Rope): tf.Tensor4D {
  const R = rope.cos.shape[3];
  const Dh = x.shape[3];
  const [xr, pass] = R === Dh ? [x, undefined] : tf.split(x, [R, Dh - R], 3); // [B, H, T, R], [B, H, T, Dh−R]
  const [x1, x2] = tf.split(xr, [R / 2, R / 2], 3); // [B, H, T, R/2] each
  const rotated = tf.concat([tf.neg(x2), x1], 3); // [B, H, T, R]
  const y = tf.add(tf.mul(xr, rope.cos), tf.mul(rotated, rope.sin)) as tf.Tensor4D; // [B, H, T, R]
  return pass === undefined ? y : (tf.concat([y, pass], 3) as tf.Tensor4D); // [B, H, T, Dh]
}

/**
 * Additive attention bias [B, 1, Tq, Tk] for queries at key indices past … past+Tq−1: a query sees
 * earlier real keys and always itself (so a padding query never has an empty row).
 */
function attentionBias(keyMask: tf.Tensor2D, tq: number): tf.Tensor4D {
  const [B, tk] = keyMask.shape;
  const past = tk - tq;
  const causal = new Float32Array(tq * tk);
  const self = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) {
    for (let j = 0; j <= past + i; j++) causal[i * tk + j] = 1;
    self[i * tk + past + i] = 1;
  }
  const keys = tf.reshape(tf.cast(keyMask, 'float32'), [B, 1, tk]); // [B, 1, Tk]
  const allowed = tf.mul(tf.maximum(keys, tf.tensor2d(self, [tq, tk])), tf.tensor2d(causal, [tq, tk])); // [B, Tq, Tk]
  return tf.reshape(tf.mul(tf.sub(allowed, 1), 1e9), [B, 1, tq, tk]); // [B, 1, Tq, Tk]
}

/**
 * For the top block under `lastTokenOnly`: each row's last real token (argmax of mask·(1…T); 0 for an all-padding
 * row). `rows` [B] indexes the flattened [B·T] rows (B may be k·B0, member-major), `bias` [B, 1, 1, T] is that
 * query's row of `attentionBias`, `rope` its position's RoPE tables [B, 1, 1, R].
 */
function lastTokenQueries(
  keyMask: tf.Tensor2D,
  positions: tf.Tensor2D,
  B: number,
  T: number,
  config: GptConfig,
): { rows: tf.Tensor1D; bias: tf.Tensor4D; rope: Rope | undefined } {
  const B0 = keyMask.shape[0];
  const reps = B / B0;
  const mask = tf.cast(keyMask, 'float32'); // [B0, T]
  const last = tf.cast(tf.argMax(tf.mul(mask, tf.range(1, T + 1, 1, 'float32')), 1), 'int32'); // [B0]
  const keys = tf.reshape(tf.range(0, T, 1, 'int32'), [1, T]); // [1, T]
  const lastCol = tf.reshape(last, [B0, 1]); // [B0, 1]
  // allowed: real keys up to the query, and the query itself (as attentionBias)
  const allowed = tf.maximum(
    tf.mul(mask, tf.cast(tf.lessEqual(keys, lastCol), 'float32')),
    tf.cast(tf.equal(keys, lastCol), 'float32'),
  ); // [B0, T]
  let bias = tf.reshape(tf.mul(tf.sub(allowed, 1), 1e9), [B0, 1, 1, T]) as tf.Tensor4D; // [B0, 1, 1, T]
  let rope: Rope | undefined;
  if (config.positional === 'rope') {
    const pos = tf.reshape(
      tf.gather(tf.reshape(positions, [B0 * T]), tf.add(tf.range(0, B0 * T, T, 'int32'), last)),
      [B0, 1],
    ); // [B0, 1]
    const r = ropeTables(pos as tf.Tensor2D, config); // [B0, 1, 1, R]
    rope = reps === 1 ? r : { cos: tf.tile(r.cos, [reps, 1, 1, 1]), sin: tf.tile(r.sin, [reps, 1, 1, 1]) };
  }
  const lastAll = reps === 1 ? last : tf.tile(last, [reps]); // [B]
  if (reps !== 1) bias = tf.tile(bias, [reps, 1, 1, 1]); // [B, 1, 1, T]
  const rows = tf.add(tf.range(0, B * T, T, 'int32'), lastAll) as tf.Tensor1D; // [B]
  return { rows, bias, rope };
}

/** Positions of the tokens from the mask: cumsum(mask) − 1, clipped at 0 for leading padding. [B, T] int32 */
export function positionsFromMask(mask: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(
    () => tf.cast(tf.relu(tf.sub(tf.cumsum(tf.cast(mask, 'float32'), 1), 1)), 'int32') as tf.Tensor2D,
  ); // [B, T]
}

// ---------------------------------------------------------------- forward

/**
 * The core forward pass over new tokens `ids` [B, Tn] given `past` keys/values (or none):
 * `keyMask` [B, Tp + Tn] covers past and new tokens, `positions` [B, Tn] the new tokens' positions.
 * Returns the final-norm hidden [B', Tn, D] and, when `cache` is set, every layer's keys/values.
 */
export function gptForward(
  params: GptParams,
  config: GptConfig,
  ids: tf.Tensor2D,
  keyMask: tf.Tensor2D,
  positions: tf.Tensor2D,
  options: GptForwardOptions & {
    past?: readonly KvLayer[] | undefined;
    cache?: boolean;
    /**
     * Only each row's last real token leaves the top block (hidden [B', 1, D]): the top block computes keys
     * and values for every token but queries, attention output, MLP and final norm for one token per
     * row. What a reward model reads, for about a quarter of the top block's cost.
     */
    lastTokenOnly?: boolean;
  } = {},
): { hidden: tf.Tensor3D; cache: KvLayer[] | undefined } {
  const { nLayers: L, dropout: pDrop } = config;
  const { H, Hkv, Dh } = gptDims(config);
  const rep = H / Hkv; // query heads per key/value head
  const hook = options.linearHook;
  const mw = options.memberWeights;
  const rng = options.dropoutRng;
  const [B0, tn] = ids.shape;
  const expand = options.expand;
  if (expand !== undefined) {
    if (!Number.isInteger(expand.members) || expand.members < 1) {
      throw new ConfigError(`expand.members must be a positive integer, got ${expand.members}`, {
        location: { field: 'expand.members' },
        hint: 'pass the ensemble size k',
      });
    }
    if (!Number.isInteger(expand.atLayer) || expand.atLayer < 0 || expand.atLayer > L) {
      throw new ConfigError(`expand.atLayer ${expand.atLayer} is outside 0…${L}`, {
        location: { field: 'expand.atLayer' },
        hint: `the model has ${L} layers; expanding at ${L} shares every block`,
      });
    }
    if (options.cache === true || options.past !== undefined) {
      throw new ConfigError('member expansion cannot be combined with a KV cache', {
        location: { field: 'expand' },
        hint: 'generate with expansion off',
      });
    }
  }
  const lastOnly = options.lastTokenOnly === true;
  if (lastOnly && (options.cache === true || options.past !== undefined)) {
    throw new ConfigError('lastTokenOnly cannot be combined with a KV cache', {
      location: { field: 'lastTokenOnly' },
      hint: 'generate with lastTokenOnly off',
    });
  }
  // tidy keeps a flat list of tensors: [hidden, k0, v0, k1, v1, ...]
  const kept = tf.tidy((): tf.Tensor[] => {
    let B = B0;
    const flatIds = tf.reshape(ids, [B * tn]); // [N]
    let x = tf.gather(params.wte, flatIds) as tf.Tensor2D; // [N, D]
    if (params.wpe !== undefined) x = tf.add(x, tf.gather(params.wpe, tf.reshape(positions, [B * tn]))); // [N, D]
    x = dropout(x, pDrop, rng);
    let bias = attentionBias(keyMask, tn); // [B, 1, Tn, Tk]
    let rope = config.positional === 'rope' ? ropeTables(positions, config) : undefined; // [B, 1, Tn, R]
    const scale = 1 / Math.sqrt(Dh);
    const present: KvLayer[] = [];
    const tile = (k: number): void => {
      x = tf.tile(x, [k, 1]); // [k·N, D], member-major
      bias = tf.tile(bias, [k, 1, 1, 1]); // [k·B, 1, Tn, Tk]
      if (rope !== undefined)
        rope = { cos: tf.tile(rope.cos, [k, 1, 1, 1]), sin: tf.tile(rope.sin, [k, 1, 1, 1]) };
      B *= k;
    };
    const toHeads = (t: tf.Tensor2D, len: number, heads: number): tf.Tensor4D =>
      tf.transpose(tf.reshape(t, [B, len, heads, Dh]), [0, 2, 1, 3]); // [B, heads, len, Dh]
    for (let l = 0; l < L; l++) {
      if (expand !== undefined && expand.atLayer === l) tile(expand.members);
      const members = B / B0; // member copies the rows hold (k once expanded)
      const lin = (t: tf.Tensor2D, p: Linear, module: LinearModule): tf.Tensor2D =>
        linear(t, p, { layer: l, module }, hook, mw, members);
      // One tidy per block: its intermediates are freed as soon as it is done (what a backward pass needs,
      // tfjs keeps on its own), so peak memory is about one block's activations, not every block's.
      const xIn = x;
      const out = tf.tidy((): tf.Tensor[] => {
        const blk = params.blocks[l] as GptBlockParams;
        // The top block with lastTokenOnly: queries (and everything after attention) for one token per row.
        const top = lastOnly && l === L - 1 ? lastTokenQueries(keyMask, positions, B, tn, config) : undefined;
        const tq = top === undefined ? tn : 1;
        const h = norm(x, blk.ln1, config); // [N, D]
        const hq = top === undefined ? h : (tf.gather(h, top.rows) as tf.Tensor2D); // [B·tq, D]
        let q = toHeads(lin(hq, blk.q, 'q'), tq, H); // [B, H, tq, Dh]
        let k = toHeads(lin(h, blk.k, 'k'), tn, Hkv); // [B, Hkv, Tn, Dh]
        let v = toHeads(lin(h, blk.v, 'v'), tn, Hkv); // [B, Hkv, Tn, Dh]
        if (rope !== undefined) {
          q = applyRope(q, top?.rope ?? rope);
          k = applyRope(k, rope);
        }
        const past = options.past?.[l];
        if (past !== undefined) {
          k = tf.concat([past.k, k], 2); // [B, Hkv, Tk, Dh]
          v = tf.concat([past.v, v], 2); // [B, Hkv, Tk, Dh]
        }
        const tk = k.shape[2];
        // Grouped-query attention without copying keys: the rep query heads of one kv head are rows.
        const qg = tf.reshape(tf.mul(q, scale), [B, Hkv, rep * tq, Dh]) as tf.Tensor4D; // [B, Hkv, rep·tq, Dh]
        const scores = tf.reshape(matMulT(qg, k), [B, H, tq, tk]); // [B, H, tq, Tk]
        const probs = dropout(tf.softmax(tf.add(scores, top?.bias ?? bias)), pDrop, rng); // [B, H, tq, Tk]
        const pg = tf.reshape(probs, [B, Hkv, rep * tq, tk]) as tf.Tensor4D; // [B, Hkv, rep·tq, Tk]
        const att = tf.reshape(matMul(pg, v), [B, H, tq, Dh]); // [B, H, tq, Dh]
        const y = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * tq, H * Dh]) as tf.Tensor2D; // [B·tq, H·Dh]
        const xq = top === undefined ? x : (tf.gather(x, top.rows) as tf.Tensor2D); // [B·tq, D]
        const a = dropout(lin(y, blk.o, 'o'), pDrop, rng); // [B·tq, D]
        // NeoX's parallel residual feeds the MLP the block input; GPT-2 and Llama the attention's output.
        const xa = tf.add(xq, a) as tf.Tensor2D; // [B·tq, D]
        const h2 = norm(config.parallelResidual ? xq : xa, blk.ln2, config); // [B·tq, D]
        let m: tf.Tensor2D;
        if (config.mlp === 'swiglu') {
          const g = silu(lin(h2, blk.gate as Linear, 'gate')); // [B·tq, F]
          m = tf.mul(g, lin(h2, blk.fc, 'fc')); // [B·tq, F]
        } else {
          const act = config.geluApprox === 'tanh' ? gelu : exactGelu;
          m = act(lin(h2, blk.fc, 'fc')); // [B·tq, F]
        }
        const xl = tf.add(xa, dropout(lin(m, blk.proj, 'proj'), pDrop, rng)); // [B·tq, D]
        return options.cache === true ? [xl, k, v] : [xl];
      });
      x = out[0] as tf.Tensor2D; // [B·tq, D]
      if (options.cache === true) present.push({ k: out[1] as tf.Tensor4D, v: out[2] as tf.Tensor4D });
      xIn.dispose(); // the previous block's output (created here; a backward pass keeps its own reference)
    }
    if (expand !== undefined && expand.atLayer === L) tile(expand.members);
    const tOut = lastOnly ? 1 : tn;
    const hidden = tf.reshape(norm(x, params.lnf, config), [B, tOut, config.dModel]) as tf.Tensor3D; // [B', tOut, D]
    return [hidden, ...present.flatMap((p) => [p.k, p.v])];
  });
  const cache: KvLayer[] = [];
  for (let i = 1; i < kept.length; i += 2)
    cache.push({ k: kept[i] as tf.Tensor4D, v: kept[i + 1] as tf.Tensor4D });
  return { hidden: kept[0] as tf.Tensor3D, cache: options.cache === true ? cache : undefined };
}

function checkInputs(config: GptConfig, ids: tf.Tensor, mask: tf.Tensor): void {
  if (ids.rank !== 2 || ids.dtype !== 'int32') {
    throw new ConfigError(`ids must be an int32 [B, T] tensor, got ${ids.dtype} [${ids.shape.join(', ')}]`, {
      location: { field: 'ids' },
      hint: "create it with tf.tensor2d(rows, [B, T], 'int32')",
    });
  }
  if (mask.rank !== 2 || mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
    throw new ConfigError(`mask has shape [${mask.shape.join(', ')}], ids [${ids.shape.join(', ')}]`, {
      location: { field: 'mask' },
      hint: 'pass one mask entry (1 = real token, 0 = padding) per id',
    });
  }
  const t = ids.shape[1] as number;
  if (t > config.contextLength) {
    throw new ConfigError(`sequence of length ${t} exceeds context ${config.contextLength}`, {
      location: { field: 'contextLength' },
      hint: 'truncate the inputs or use a config with a longer contextLength',
    });
  }
}

/** Hidden states after the final norm: ids [B, T] int32, mask [B, T] (1 = real) → [B', T, D]. */
export function gptHidden(
  params: GptParams,
  config: GptConfig,
  ids: tf.Tensor2D,
  mask: tf.Tensor2D,
  options: GptForwardOptions = {},
): tf.Tensor3D {
  checkInputs(config, ids, mask);
  return tf.tidy(() => gptForward(params, config, ids, mask, positionsFromMask(mask), options).hidden);
}

/**
 * The final hidden state of each row's last real token, [B', D] (B' = k·B with member expansion): equal to
 * `lastTokenHidden(gptHidden(...), mask)`, but the top block runs its queries, attention output, MLP and the
 * final norm for that one token per row only. What a reward model needs.
 */
export function gptLastHidden(
  params: GptParams,
  config: GptConfig,
  ids: tf.Tensor2D,
  mask: tf.Tensor2D,
  options: GptForwardOptions = {},
): tf.Tensor2D {
  checkInputs(config, ids, mask);
  return tf.tidy(() => {
    const { hidden } = gptForward(params, config, ids, mask, positionsFromMask(mask), {
      ...options,
      lastTokenOnly: true,
    }); // [B', 1, D]
    return tf.squeeze(hidden, [1]) as tf.Tensor2D; // [B', D]
  });
}

/** The hidden state of each row's last real token: hidden [B', T, D], mask [B, T] with B' = k·B → [B', D]. */
export function lastTokenHidden(hidden: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  const [B, T, D] = hidden.shape;
  const k = B / mask.shape[0];
  if (!Number.isInteger(k) || mask.shape[1] !== T) {
    throw new ConfigError(
      `mask [${mask.shape.join(', ')}] does not fit hidden [${hidden.shape.join(', ')}]`,
      {
        location: { field: 'mask' },
        hint: 'pass the mask the hidden states were computed with',
      },
    );
  }
  return tf.tidy(() => {
    const m = k === 1 ? tf.cast(mask, 'float32') : tf.tile(tf.cast(mask, 'float32'), [k, 1]); // [B', T]
    const last = tf.cast(tf.argMax(tf.mul(m, tf.range(1, T + 1, 1, 'float32')), 1), 'int32'); // [B']
    const rows = tf.add(tf.range(0, B * T, T, 'int32'), last); // [B']
    return tf.gather(tf.reshape(hidden, [B * T, D]), rows) as tf.Tensor2D; // [B', D]
  });
}

/** Next-token logits from hidden states: [B, T, D] → [B, T, V]. */
export function lmLogits(params: GptParams, hidden: tf.Tensor3D): tf.Tensor3D {
  const [B, T, D] = hidden.shape;
  const w = params.lmHead ?? params.wte; // [V, D]
  return tf.tidy(() => {
    const logits = matMulT(tf.reshape(hidden, [B * T, D]) as tf.Tensor2D, w as tf.Tensor2D); // [N, V]
    return tf.reshape(logits, [B, T, w.shape[0] as number]) as tf.Tensor3D; // [B, T, V]
  });
}

/**
 * log p(target) for each row of logits [..., V] and integer targets [...] → [...]. The gradient is
 * written by hand (onehot − softmax): tfjs's own path through logSumExp's max costs a broadcast
 * Equal over [N, V] that alone took longer than the forward pass.
 */
export function gatherLogProbs(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const V = logits.shape[logits.rank - 1] as number;
  const M = logits.size / V;
  const outShape = logits.shape.slice(0, -1);
  const f = tf.customGrad((x, save) => {
    const flat = tf.reshape(x as tf.Tensor, [M, V]); // [M, V]
    const ids = tf.reshape(tf.cast(targets, 'int32'), [M]); // [M]
    const lse = tf.logSumExp(flat, -1, true); // [M, 1]
    const picked = tf.gather(tf.reshape(flat, [M * V]), tf.add(tf.range(0, M * V, V, 'int32'), ids)); // [M]
    (save as tf.GradSaveFunc)([flat, lse, ids]);
    return {
      value: tf.reshape(tf.sub(picked, tf.reshape(lse, [M])), outShape), // [...]
      gradFunc: (dy, saved) => {
        const [sf, sl, si] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const p = tf.exp(tf.sub(sf, sl)); // [M, V]
        const g = tf.mul(tf.sub(tf.oneHot(si, V), p), tf.reshape(dy as tf.Tensor, [M, 1])); // [M, V]
        return tf.reshape(g, (x as tf.Tensor).shape);
      },
    };
  });
  return f(logits);
}

/**
 * Log-probability of each next token: position t holds log p(ids[t+1] | ids[..t]) → [B', T−1].
 * Entries whose target is padding are meaningless: multiply by mask[:, 1:].
 */
export function tokenLogProbs(
  params: GptParams,
  config: GptConfig,
  ids: tf.Tensor2D,
  mask: tf.Tensor2D,
  options: GptForwardOptions = {},
): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = ids.shape;
    const hidden = gptHidden(params, config, ids, mask, options); // [B', T, D]
    const k = (hidden.shape[0] as number) / B;
    const logits = lmLogits(params, tf.slice(hidden, [0, 0, 0], [-1, T - 1, -1])); // [B', T-1, V]
    let targets = tf.slice(ids, [0, 1], [B, T - 1]); // [B, T-1]
    if (k > 1) targets = tf.tile(targets, [k, 1]); // [B', T-1]
    return gatherLogProbs(logits, targets) as tf.Tensor2D; // [B', T-1]
  });
}

/** Entropy of the next-token distribution at each position: logits [B, T, V] → [B, T]. */
export function tokenEntropy(logits: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const logZ = tf.logSumExp(logits, -1, true); // [B, T, 1]
    const p = tf.exp(tf.sub(logits, logZ)); // [B, T, V]
    return tf.sub(tf.squeeze(logZ, [2]), tf.sum(tf.mul(p, logits), -1)) as tf.Tensor2D; // [B, T]
  });
}
