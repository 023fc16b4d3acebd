/**
 * Hugging Face tensor names and layouts ↔ Quorum's, per family, in both directions (loading reads
 * `toQuorum`, exporting `toHf`). Quorum stores every linear weight [in, out]:
 *
 *   llama/qwen2  nn.Linear [out, in]: transposed. Names model.layers.N.self_attn.q_proj.weight, …
 *   gpt2         Conv1D, already [in, out]; the fused attn.c_attn [D, 3D] is q | k | v along its columns
 *   gpt_neox     nn.Linear, transposed; the fused attention.query_key_value [3D, D] holds, for each head,
 *                its q, k and v rows in turn ([H, 3, Dh, D]), which is not q | k | v
 *
 * A mapping is a list of rules, each between some HF tensors and some Quorum tensors (one to one, or a
 * fused HF tensor to three Quorum ones), with the HF shapes the config implies.
 */
import { type GptConfig, gptDims, gptParameterShapes } from '@quorum/backbone';
import { CheckpointError } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import type { HfFamily } from './config.js';

interface Rule {
  readonly hf: readonly string[];
  readonly quorum: readonly string[];
  readonly hfShapes: readonly number[][];
  toQuorum(hf: tf.Tensor[]): tf.Tensor[];
  toHf(quorum: tf.Tensor[]): tf.Tensor[];
}

export interface HfMapping {
  readonly family: HfFamily;
  /** Every HF tensor the model is made of, with the shape the config implies. */
  readonly hfShapes: Readonly<Record<string, readonly number[]>>;
  /** HF tensors → Quorum parameters by name (new tensors, the caller disposes them). */
  toQuorum(hf: Readonly<Record<string, tf.Tensor>>): Record<string, tf.Tensor>;
  /** Quorum parameters → HF tensors by name, in HF's layouts (new tensors, the caller disposes them). */
  toHf(quorum: Readonly<Record<string, tf.Tensor>>): Record<string, tf.Tensor>;
  /** Tensors a checkpoint of this family may hold that the model does not read (buffers, a tied LM head). */
  isIgnorable(name: string): boolean;
}

export interface HfMappingOptions {
  /** GPT-2 checkpoints name tensors `transformer.h.0…` (GPT2LMHeadModel) or `h.0…` (GPT2Model). */
  readonly gpt2Prefix?: 'transformer.' | '';
}

const copy = (ts: tf.Tensor[]): tf.Tensor[] => ts.map((t) => t.clone());
const transpose = (ts: tf.Tensor[]): tf.Tensor[] => ts.map((t) => tf.transpose(t));

function same(hf: string, quorum: string, shape: number[]): Rule {
  return { hf: [hf], quorum: [quorum], hfShapes: [shape], toQuorum: copy, toHf: copy };
}

/** An nn.Linear weight [out, in] ↔ Quorum's [in, out]. */
function linear(hf: string, quorum: string, [inDim, outDim]: number[]): Rule {
  return {
    hf: [hf],
    quorum: [quorum],
    hfShapes: [[outDim as number, inDim as number]],
    toQuorum: transpose,
    toHf: transpose,
  };
}

/** GPT-2's c_attn: weight [D, 3D] or bias [3D], q | k | v along the last axis. */
function gpt2Qkv(hf: string, quorum: string[], shape: number[]): Rule {
  const axis = shape.length - 1;
  const hfShape = [...shape.slice(0, -1), 3 * (shape[axis] as number)];
  return {
    hf: [hf],
    quorum,
    hfShapes: [hfShape],
    toQuorum: ([t]) => tf.split(t as tf.Tensor, 3, axis),
    toHf: (ts) => [tf.concat(ts, axis)],
  };
}

/**
 * NeoX's query_key_value: weight [3·H·Dh, D] (rows [H, 3, Dh]) ↔ q, k, v weights [D, H·Dh]; bias
 * [3·H·Dh] ↔ q, k, v biases [H·Dh].
 */
function neoxQkv(hf: string, quorum: string[], H: number, Dh: number, D: number | undefined): Rule {
  const rows = [H, 3, Dh];
  const isWeight = D !== undefined;
  return {
    hf: [hf],
    quorum,
    hfShapes: [isWeight ? [3 * H * Dh, D] : [3 * H * Dh]],
    toQuorum: ([t]) =>
      tf.tidy(() => {
        const grouped = tf.reshape(t as tf.Tensor, isWeight ? [...rows, D] : rows); // [H, 3, Dh(, D)]
        return tf.unstack(grouped, 1).map((part) => {
          const flat = tf.reshape(part, isWeight ? [H * Dh, D] : [H * Dh]); // [H·Dh(, D)]
          return isWeight ? tf.transpose(flat) : flat; // [D, H·Dh] or [H·Dh]
        });
      }),
    toHf: (ts) =>
      tf.tidy(() => {
        const parts = ts.map((t) =>
          tf.reshape(isWeight ? tf.transpose(t) : t, isWeight ? [H, Dh, D] : [H, Dh]),
        );
        return [tf.reshape(tf.stack(parts, 1), isWeight ? [3 * H * Dh, D] : [3 * H * Dh])]; // [3·H·Dh(, D)]
      }),
  };
}

function llamaRules(config: GptConfig, shapes: Record<string, number[]>): Rule[] {
  const rules: Rule[] = [same('model.embed_tokens.weight', 'wte', shapes.wte as number[])];
  for (let l = 0; l < config.nLayers; l++) {
    const [q, hf] = [`h.${l}`, `model.layers.${l}`];
    rules.push(same(`${hf}.input_layernorm.weight`, `${q}.ln_1.g`, shapes[`${q}.ln_1.g`] as number[]));
    for (const m of ['q', 'k', 'v', 'o']) {
      rules.push(
        linear(
          `${hf}.self_attn.${m}_proj.weight`,
          `${q}.attn.${m}.w`,
          shapes[`${q}.attn.${m}.w`] as number[],
        ),
      );
      const b = `${q}.attn.${m}.b`;
      if (b in shapes) rules.push(same(`${hf}.self_attn.${m}_proj.bias`, b, shapes[b] as number[]));
    }
    rules.push(
      same(`${hf}.post_attention_layernorm.weight`, `${q}.ln_2.g`, shapes[`${q}.ln_2.g`] as number[]),
    );
    for (const [m, name] of [
      ['gate', 'gate_proj'],
      ['fc', 'up_proj'],
      ['proj', 'down_proj'],
    ] as const) {
      rules.push(
        linear(`${hf}.mlp.${name}.weight`, `${q}.mlp.${m}.w`, shapes[`${q}.mlp.${m}.w`] as number[]),
      );
      const b = `${q}.mlp.${m}.b`;
      if (b in shapes) rules.push(same(`${hf}.mlp.${name}.bias`, b, shapes[b] as number[]));
    }
  }
  rules.push(same('model.norm.weight', 'ln_f.g', shapes['ln_f.g'] as number[]));
  return rules;
}

function gpt2Rules(config: GptConfig, shapes: Record<string, number[]>, prefix: string): Rule[] {
  const p = prefix;
  const rules: Rule[] = [
    same(`${p}wte.weight`, 'wte', shapes.wte as number[]),
    same(`${p}wpe.weight`, 'wpe', shapes.wpe as number[]),
  ];
  const norm = (hf: string, q: string): Rule[] => [
    same(`${hf}.weight`, `${q}.g`, shapes[`${q}.g`] as number[]),
    same(`${hf}.bias`, `${q}.b`, shapes[`${q}.b`] as number[]),
  ];
  // Conv1D weights are [in, out] already
  const conv = (hf: string, q: string): Rule[] => [
    same(`${hf}.weight`, `${q}.w`, shapes[`${q}.w`] as number[]),
    same(`${hf}.bias`, `${q}.b`, shapes[`${q}.b`] as number[]),
  ];
  for (let l = 0; l < config.nLayers; l++) {
    const [q, hf] = [`h.${l}`, `${p}h.${l}`];
    const qkv = (part: 'w' | 'b'): string[] => ['q', 'k', 'v'].map((m) => `${q}.attn.${m}.${part}`);
    rules.push(
      ...norm(`${hf}.ln_1`, `${q}.ln_1`),
      gpt2Qkv(`${hf}.attn.c_attn.weight`, qkv('w'), shapes[`${q}.attn.q.w`] as number[]),
      gpt2Qkv(`${hf}.attn.c_attn.bias`, qkv('b'), shapes[`${q}.attn.q.b`] as number[]),
      ...conv(`${hf}.attn.c_proj`, `${q}.attn.o`),
      ...norm(`${hf}.ln_2`, `${q}.ln_2`),
      ...conv(`${hf}.mlp.c_fc`, `${q}.mlp.fc`),
      ...conv(`${hf}.mlp.c_proj`, `${q}.mlp.proj`),
    );
  }
  rules.push(...norm(`${p}ln_f`, 'ln_f'));
  return rules;
}

function neoxRules(config: GptConfig, shapes: Record<string, number[]>): Rule[] {
  const { H, Dh } = gptDims(config);
  const D = config.dModel;
  const rules: Rule[] = [same('gpt_neox.embed_in.weight', 'wte', shapes.wte as number[])];
  const norm = (hf: string, q: string): Rule[] => [
    same(`${hf}.weight`, `${q}.g`, shapes[`${q}.g`] as number[]),
    same(`${hf}.bias`, `${q}.b`, shapes[`${q}.b`] as number[]),
  ];
  const lin = (hf: string, q: string): Rule[] => [
    linear(`${hf}.weight`, `${q}.w`, shapes[`${q}.w`] as number[]),
    ...(`${q}.b` in shapes ? [same(`${hf}.bias`, `${q}.b`, shapes[`${q}.b`] as number[])] : []),
  ];
  for (let l = 0; l < config.nLayers; l++) {
    const [q, hf] = [`h.${l}`, `gpt_neox.layers.${l}`];
    const qkv = (part: 'w' | 'b'): string[] => ['q', 'k', 'v'].map((m) => `${q}.attn.${m}.${part}`);
    rules.push(...norm(`${hf}.input_layernorm`, `${q}.ln_1`));
    rules.push(neoxQkv(`${hf}.attention.query_key_value.weight`, qkv('w'), H, Dh, D));
    if (`${q}.attn.q.b` in shapes)
      rules.push(neoxQkv(`${hf}.attention.query_key_value.bias`, qkv('b'), H, Dh, undefined));
    rules.push(
      ...lin(`${hf}.attention.dense`, `${q}.attn.o`),
      ...norm(`${hf}.post_attention_layernorm`, `${q}.ln_2`),
      ...lin(`${hf}.mlp.dense_h_to_4h`, `${q}.mlp.fc`),
      ...lin(`${hf}.mlp.dense_4h_to_h`, `${q}.mlp.proj`),
    );
  }
  rules.push(...norm('gpt_neox.final_layer_norm', 'ln_f'));
  return rules;
}

const LM_HEAD: Record<HfFamily, string> = {
  llama: 'lm_head.weight',
  gpt2: 'lm_head.weight',
  gpt_neox: 'embed_out.weight',
};

// Non-parameter buffers older transformers versions saved: causal masks and rotary frequencies.
const BUFFERS =
  /\.(attn\.bias|attn\.masked_bias|attention\.bias|attention\.masked_bias|rotary_emb\.inv_freq)$/;

/** The name and layout mapping of a family for one config. */
export function hfMapping(family: HfFamily, config: GptConfig, options: HfMappingOptions = {}): HfMapping {
  const shapes = gptParameterShapes(config);
  const rules =
    family === 'llama'
      ? llamaRules(config, shapes)
      : family === 'gpt2'
        ? gpt2Rules(config, shapes, options.gpt2Prefix ?? 'transformer.')
        : neoxRules(config, shapes);
  if (!config.tieEmbeddings) rules.push(same(LM_HEAD[family], 'lm_head.w', shapes['lm_head.w'] as number[]));
  const hfShapes: Record<string, readonly number[]> = {};
  for (const r of rules) {
    for (const [i, n] of r.hf.entries()) hfShapes[n] = r.hfShapes[i] as number[];
  }
  const run = (
    from: Readonly<Record<string, tf.Tensor>>,
    names: (r: Rule) => readonly string[],
    out: (r: Rule) => readonly string[],
    f: (r: Rule, ts: tf.Tensor[]) => tf.Tensor[],
  ): Record<string, tf.Tensor> => {
    const result: Record<string, tf.Tensor> = {};
    for (const r of rules) {
      const inputs = names(r).map((n) => {
        const t = from[n];
        if (t === undefined) {
          throw new CheckpointError(`tensor "${n}" is missing`, {
            location: { field: n },
            hint: `pass every tensor of the ${family} model (see hfShapes and the Quorum parameter names)`,
          });
        }
        return t;
      });
      for (const [i, t] of f(r, inputs).entries()) result[out(r)[i] as string] = t;
    }
    return result;
  };
  return {
    family,
    hfShapes,
    toQuorum: (hf) =>
      run(
        hf,
        (r) => r.hf,
        (r) => r.quorum,
        (r, ts) => r.toQuorum(ts),
      ),
    toHf: (quorum) =>
      run(
        quorum,
        (r) => r.quorum,
        (r) => r.hf,
        (r, ts) => r.toHf(ts),
      ),
    isIgnorable: (name) => BUFFERS.test(name) || (config.tieEmbeddings && name === LM_HEAD[family]),
  };
}
