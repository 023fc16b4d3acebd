/**
 * One member of a `lora` ensemble → a PEFT LoRA adapter for a `*ForSequenceClassification` base, in the names
 * PEFT's `get_peft_model_state_dict` saves (adapter name removed):
 *
 *   base_model.model.<module>.lora_A.weight          [r, in]   (Quorum's A_m [in, r], transposed)
 *   base_model.model.<module>.lora_B.weight          [out, r]  (Quorum's B_m [r, out], transposed)
 *   base_model.model.score.modules_to_save.weight    [1, D]    the member's reward head
 *
 * PEFT adds lora_B(lora_A(x)) · lora_alpha / r; Quorum adds (x A) B · alpha / rank: the same with the
 * same alpha and r. Modules:
 *
 *   llama/qwen2   self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj (q → q_proj, fc → up_proj, proj → down_proj)
 *   gpt2          attn.c_attn (fused q|k|v, Conv1D: fan_in_fan_out), attn.c_proj, mlp.c_fc, mlp.c_proj
 *   gpt_neox      attention.query_key_value (fused, rows per head [H, 3, Dh]), attention.dense,
 *                 mlp.dense_h_to_4h, mlp.dense_4h_to_h
 *
 * A fused module carries Quorum's separate q, k and v adapters exactly as one adapter of rank n·r (n of
 * q/k/v adapted): A = [A_q A_k A_v] and a block-diagonal B laid out like the fused weight's outputs;
 * `rank_pattern` and `alpha_pattern` give it rank n·r and alpha n·alpha, so its scale stays alpha / r.
 *
 * The adapters are read by their saved names (`h.<l>.attn.q.lora_A` [k, in, r], … in adapters.safetensors),
 * so this depends on the checkpoint format, not on @quorum/lora's code.
 */
import { type GptConfig, gptDims } from '@quorum/backbone';
import { CheckpointError, ConfigError, type TensorRecord, tensorsToRecords } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import type { HfFamily } from './config.js';

/** adapter_config.json as PEFT reads it (LoraConfig fields). */
export type PeftAdapterConfig = Readonly<Record<string, unknown>>;

type Site = 'q' | 'k' | 'v' | 'o' | 'gate' | 'fc' | 'proj';

/** Where each Quorum site lives in a family: HF module (relative to the layer), and the fused part. */
const MODULES: Readonly<Record<HfFamily, Readonly<Record<Site, string>>>> = {
  llama: {
    q: 'self_attn.q_proj',
    k: 'self_attn.k_proj',
    v: 'self_attn.v_proj',
    o: 'self_attn.o_proj',
    gate: 'mlp.gate_proj',
    fc: 'mlp.up_proj',
    proj: 'mlp.down_proj',
  },
  gpt2: {
    q: 'attn.c_attn',
    k: 'attn.c_attn',
    v: 'attn.c_attn',
    o: 'attn.c_proj',
    gate: '',
    fc: 'mlp.c_fc',
    proj: 'mlp.c_proj',
  },
  gpt_neox: {
    q: 'attention.query_key_value',
    k: 'attention.query_key_value',
    v: 'attention.query_key_value',
    o: 'attention.dense',
    gate: '',
    fc: 'mlp.dense_h_to_4h',
    proj: 'mlp.dense_4h_to_h',
  },
};

const LAYER_PREFIX: Readonly<Record<HfFamily, string>> = {
  llama: 'model.layers.',
  gpt2: 'transformer.h.',
  gpt_neox: 'gpt_neox.layers.',
};

const SITE_NAME = /^h\.(\d+)\.(attn|mlp)\.(q|k|v|o|gate|fc|proj)\.lora_([AB])$/;

interface MemberSite {
  readonly layer: number;
  readonly site: Site;
  readonly a: tf.Tensor2D; // [in, r]
  readonly b: tf.Tensor2D; // [r, out]
}

function positive(options: Readonly<Record<string, unknown>>, key: string, file: string): number {
  const v = options[key];
  if (typeof v !== 'number' || !(v > 0)) {
    throw new CheckpointError(`option "${key}" is ${JSON.stringify(v)}, not a positive number`, {
      location: { file, field: `options.${key}` },
      hint: "the lora ensemble's quorum.json is damaged; retrain it",
    });
  }
  return v;
}

/** Member m's adapters, site by site (slices: the caller disposes them). */
function memberSites(adapters: Readonly<Record<string, tf.Variable>>, m: number, file: string): MemberSite[] {
  const found = new Map<string, { layer: number; site: Site; a?: tf.Variable; b?: tf.Variable }>();
  for (const [name, v] of Object.entries(adapters)) {
    const match = SITE_NAME.exec(name);
    if (match === null) continue;
    const key = `${match[1]}.${match[3]}`;
    const entry = found.get(key) ?? { layer: Number(match[1]), site: match[3] as Site };
    if (match[4] === 'A') entry.a = v;
    else entry.b = v;
    found.set(key, entry);
  }
  const sites: MemberSite[] = [];
  for (const [key, e] of found) {
    if (e.a === undefined || e.b === undefined) {
      throw new CheckpointError(`site h.${key} has only one of lora_A and lora_B`, {
        location: { file, field: `h.${key}` },
        hint: 'the adapters file is damaged; retrain the ensemble',
      });
    }
    const [, inDim, r] = e.a.shape as [number, number, number];
    const out = e.b.shape[2] as number;
    sites.push({
      layer: e.layer,
      site: e.site,
      a: tf.reshape(tf.slice(e.a, [m, 0, 0], [1, inDim, r]), [inDim, r]),
      b: tf.reshape(tf.slice(e.b, [m, 0, 0], [1, r, out]), [r, out]),
    });
  }
  return sites.sort((x, y) => x.layer - y.layer || ORDER.indexOf(x.site) - ORDER.indexOf(y.site));
}

const ORDER: readonly Site[] = ['q', 'k', 'v', 'o', 'gate', 'fc', 'proj'];

/**
 * The fused q/k/v module's lora_A.weight [n·r, D] and lora_B.weight [out3, n·r] from the parts adapted
 * (in q, k, v order); `neox` lays the outputs out per head ([H, 3, Dh]) instead of q | k | v.
 */
function fused(parts: readonly MemberSite[], config: GptConfig, neox: boolean): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const { H, Dh } = gptDims(config);
    const r = parts[0]?.a.shape[1] as number;
    const n = parts.length;
    const a = tf.concat(
      parts.map((p) => p.a),
      1,
    ); // [D, n·r]
    const blocks = (['q', 'k', 'v'] as const).map((s) => {
      const j = parts.findIndex((p) => p.site === s);
      const width = H * Dh;
      if (j < 0) return tf.zeros([n * r, width]); // [n·r, H·Dh]
      const b = (parts[j] as MemberSite).b; // [r, H·Dh]
      return tf.concat(
        [tf.zeros([j * r, width]), b, tf.zeros([(n - 1 - j) * r, width])].filter((t) => t.shape[0] !== 0),
        0,
      ); // [n·r, H·Dh]
    });
    const b = neox
      ? tf.reshape(
          tf.stack(
            blocks.map((t) => tf.reshape(t, [n * r, H, Dh])),
            2,
          ),
          [n * r, 3 * H * Dh],
        ) // [n·r, H, 3, Dh] → [n·r, 3·H·Dh]
      : tf.concat(blocks, 1); // [n·r, 3·H·Dh]
    return [tf.transpose(a), tf.transpose(b)]; // [n·r, D], [3·H·Dh, n·r]
  });
}

/** Member m's adapter_config.json and adapter_model.safetensors records (see the file comment). */
export async function peftAdapter(
  family: HfFamily,
  config: GptConfig,
  options: Readonly<Record<string, unknown>>,
  adapters: Readonly<Record<string, tf.Variable>>,
  m: number,
  head: TensorRecord,
  file: string,
): Promise<{ config: PeftAdapterConfig; tensors: Record<string, TensorRecord> }> {
  const rank = positive(options, 'rank', file);
  const alpha = positive(options, 'alpha', file);
  const sites = memberSites(adapters, m, file);
  if (sites.length === 0) {
    throw new CheckpointError('holds no LoRA adapters (h.<l>.<module>.lora_A / lora_B)', {
      location: { file },
      hint: 'the adapters file is damaged; retrain the ensemble',
    });
  }
  const tensors: Record<string, tf.Tensor> = {};
  const modules = new Set<string>();
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const layers = new Set<number>();
  try {
    const byLayer = new Map<number, MemberSite[]>();
    for (const s of sites) byLayer.set(s.layer, [...(byLayer.get(s.layer) ?? []), s]);
    for (const [layer, list] of byLayer) {
      layers.add(layer);
      const qkvFused = family !== 'llama';
      const qkv = qkvFused ? list.filter((s) => s.site === 'q' || s.site === 'k' || s.site === 'v') : [];
      for (const s of list) {
        if (qkv.includes(s)) continue;
        const module = MODULES[family][s.site];
        if (module === '') {
          throw new ConfigError(`the ${family} family has no "${s.site}" layer to adapt`, {
            location: { file, field: `h.${layer}.mlp.${s.site}.lora_A` },
            hint: 'the adapters do not fit the backbone config; retrain the ensemble',
          });
        }
        const prefix = `base_model.model.${LAYER_PREFIX[family]}${layer}.${module}`;
        tensors[`${prefix}.lora_A.weight`] = tf.transpose(s.a); // [r, in]
        tensors[`${prefix}.lora_B.weight`] = tf.transpose(s.b); // [out, r]
        modules.add(module);
      }
      if (qkv.length > 0) {
        const module = MODULES[family].q;
        const prefix = `base_model.model.${LAYER_PREFIX[family]}${layer}.${module}`;
        const [a, b] = fused(qkv, config, family === 'gpt_neox');
        tensors[`${prefix}.lora_A.weight`] = a;
        tensors[`${prefix}.lora_B.weight`] = b;
        modules.add(module);
        const leaf = module.split('.').pop() as string;
        if (qkv.length > 1) {
          rankPattern[leaf] = qkv.length * rank;
          alphaPattern[leaf] = qkv.length * alpha;
        }
      }
    }
    // Short module names when every layer is adapted alike; full paths otherwise (e.g. layers { top: N }).
    const everyLayer = layers.size === config.nLayers;
    const targetModules = everyLayer
      ? [...modules]
      : [...layers].flatMap((l) => [...modules].map((mod) => `${LAYER_PREFIX[family]}${l}.${mod}`));
    const records = await tensorsToRecords(tensors);
    records['base_model.model.score.modules_to_save.weight'] = head;
    return {
      config: {
        peft_type: 'LORA',
        task_type: 'SEQ_CLS',
        base_model_name_or_path: '../base',
        inference_mode: true,
        r: rank,
        lora_alpha: alpha,
        lora_dropout: typeof options.dropout === 'number' ? options.dropout : 0,
        target_modules: targetModules.sort(),
        modules_to_save: ['score'],
        bias: 'none',
        fan_in_fan_out: family === 'gpt2',
        rank_pattern: rankPattern,
        alpha_pattern: alphaPattern,
        use_rslora: false,
        use_dora: false,
        init_lora_weights: true,
        layers_to_transform: null,
        layers_pattern: null,
      },
      tensors: records,
    };
  } finally {
    tf.dispose(Object.values(tensors));
    for (const s of sites) tf.dispose([s.a, s.b]);
  }
}
