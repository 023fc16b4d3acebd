/**
 * Quorum folders → Hugging Face folders.
 *
 *   exportPolicy(policyDir, outDir)     a policy (`quorum sft`, `quorum ppo`) → `*ForCausalLM`: config.json,
 *                                        model.safetensors, generation_config.json, tokenizer files, README.md
 *   exportRewardModel(rmDir, outDir)    a reward ensemble → `*ForSequenceClassification`, one logit per member:
 *       single, linear-heads            one folder, num_labels = k, score.weight [k, D]
 *       independent                     member-0/ … member-(k−1)/, each num_labels 1
 *       lora                            base/ (the shared transformer, a zero score) + member-m/ PEFT adapter
 *                                        folders (adapter_config.json, adapter_model.safetensors with the
 *                                        member's LoRA weights and its head under modules_to_save)
 *
 * The model type is the one `hfConfigFor` picks for the backbone config (llama/qwen2, gpt2, gpt_neox).
 *
 * Padding convention. Quorum reads a reward at each row's last real token (the eos after the answer) and
 * pads on the right. transformers' sequence classification reads the logits at the last token that is not
 * `pad_token_id` (older versions: the token before the first pad). Both pick Quorum's token exactly when
 * the pad id never occurs in a real sequence, so config.json's `pad_token_id` is such an id: the
 * tokenizer's own pad token when it has one apart from eos/bos (Quorum's `<|pad|>`), else its unknown token
 * (a byte-fallback tokenizer never produces it), else the caller's `padTokenId`. A tokenizer that pads with
 * eos (stories260K, most Llama tokenizers) would make transformers read the token before eos. Rows must be
 * right-padded (GPT-2's learned positions and transformers' default position ids count from the first
 * token), which is what the model card says.
 *
 * Heads: transformers' `score` is a Linear without a bias; Quorum's heads have one (zero unless reward
 * centering moved it; the Bradley-Terry gradient of it is zero up to rounding, which Adam still turns into
steps of about the learning rate, so trained heads have biases of order 1e-4). A non-zero bias is refused
 * unless `headBias: 'config'`, which writes it to config.json as `quorum_score_bias` (the model card says
 * to add it; `loadHfRewardModel` adds it back).
 */
import path from 'node:path';
import { disposeGpt, type GptConfig, loadPolicy, namedParameters } from '@quorum/backbone';
import {
  CheckpointError,
  ConfigError,
  type StrategyRegistry,
  type TensorRecord,
  tensorsToRecords,
} from '@quorum/core';
import { loadTokenizer, type TextTokenizer } from '@quorum/data';
import {
  builtinArchitectureRegistry,
  type EnsembleArchitecture,
  type EnsembleManifest,
  loadEnsemble,
} from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { type HfConfigJson, type HfFamily, hfConfigFor } from './config.js';
import { type StagedFolder, writeFolderAtomically } from './export-folder.js';
import { type PeftAdapterConfig, peftAdapter } from './export-peft.js';
import { hfMapping } from './mapping.js';

export interface ExportOptions {
  /** Replace a non-empty `outDir` (default false: refused). */
  readonly overwrite?: boolean | undefined;
  /** Called with notes (the pad id chosen, …); default console.warn. */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** config.json's `pad_token_id` instead of the one chosen (see the file comment); it must never occur in a row. */
  readonly padTokenId?: number | undefined;
}

export interface ExportRewardOptions extends ExportOptions {
  /** Architectures to read the ensemble with (a plugin's architecture needs its registry); default the built-ins. */
  readonly architectures?: StrategyRegistry<EnsembleArchitecture> | undefined;
  /** A non-zero head bias: `error` (default) refuses, `config` writes it to config.json as `quorum_score_bias`. */
  readonly headBias?: 'error' | 'config' | undefined;
  /** The aggregation rule the model card recommends for the k member rewards (default `mean`). */
  readonly aggregation?: string | undefined;
}

export interface HfExport {
  readonly outDir: string;
  readonly modelType: HfConfigJson['modelType'];
  readonly family: HfFamily;
  /** The Hugging Face architecture class of every model folder written. */
  readonly architecture: string;
  /** Folders written, relative to outDir ('.' for one folder). */
  readonly folders: readonly string[];
  readonly padTokenId: number;
}

const CLASS_PREFIX: Readonly<Record<HfConfigJson['modelType'], string>> = {
  llama: 'Llama',
  qwen2: 'Qwen2',
  gpt2: 'GPT2',
  gpt_neox: 'GPTNeoX',
};

/** Each family's LM head tensor, which a sequence-classification model does not have. */
const LM_HEAD = new Set(['lm_head.weight', 'embed_out.weight']);

const warn = (options: ExportOptions): ((m: string) => void) => options.onWarning ?? console.warn;

/** config.json's pad_token_id: an id no real row holds (see the file comment). */
export function exportPadTokenId(
  tokenizer: Pick<TextTokenizer, 'padId' | 'eosId' | 'bosId' | 'unkId' | 'vocabSize'>,
  override?: number,
): number {
  if (override !== undefined) {
    if (!Number.isSafeInteger(override) || override < 0 || override >= tokenizer.vocabSize) {
      throw new ConfigError(
        `padTokenId ${override} is not an id of the ${tokenizer.vocabSize}-id tokenizer`,
        {
          location: { field: 'padTokenId' },
          hint: `pass an id in 0…${tokenizer.vocabSize - 1} that never occurs in a real row`,
        },
      );
    }
    if (override === tokenizer.eosId) {
      throw new ConfigError(`padTokenId ${override} is the eos id, which ends every row`, {
        location: { field: 'padTokenId' },
        hint: 'transformers would read the token before eos; pass an id that never occurs in a row',
      });
    }
    return override;
  }
  const special = (id: number | undefined): boolean => id === tokenizer.eosId || id === tokenizer.bosId;
  if (!special(tokenizer.padId)) return tokenizer.padId;
  if (tokenizer.unkId !== undefined && !special(tokenizer.unkId)) return tokenizer.unkId;
  throw new ConfigError(
    `the tokenizer pads with id ${tokenizer.padId} (its eos or bos) and has no unknown token to use instead`,
    {
      location: { field: 'padTokenId' },
      hint: 'pass padTokenId: an id that never occurs in a real row (transformers reads the last token that is not pad_token_id)',
    },
  );
}

function tokenFields(tokenizer: TextTokenizer, pad: number): Record<string, unknown> {
  return { bos_token_id: tokenizer.bosId ?? null, eos_token_id: tokenizer.eosId, pad_token_id: pad };
}

/** The backbone's tensors in HF names (new tensors; the caller disposes them), without the LM head when asked. */
function transformerTensors(
  family: HfFamily,
  config: GptConfig,
  backbone: Readonly<Record<string, tf.Tensor>>,
  lmHead: boolean,
): Record<string, tf.Tensor> {
  const hf = hfMapping(family, config).toHf(backbone);
  if (!lmHead) {
    for (const name of Object.keys(hf)) {
      if (LM_HEAD.has(name)) {
        (hf[name] as tf.Tensor).dispose();
        delete hf[name];
      }
    }
  }
  return hf;
}

async function records(tensors: Record<string, tf.Tensor>): Promise<Record<string, TensorRecord>> {
  try {
    return await tensorsToRecords(tensors);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

async function writeTokenizer(
  folder: StagedFolder,
  prefix: string,
  tokenizer: TextTokenizer,
): Promise<string[]> {
  const files = tokenizer.files();
  for (const [name, text] of Object.entries(files)) await folder.text(path.join(prefix, name), text);
  return Object.keys(files);
}

// ---------------------------------------------------------------- policy

/** A policy folder → a `*ForCausalLM` folder (see the file comment). */
export async function exportPolicy(
  policyDir: string,
  outDir: string,
  options: ExportOptions = {},
): Promise<HfExport> {
  const policy = await loadPolicy(policyDir);
  try {
    const tokenizer = await loadTokenizer(policyDir, {
      vocabSize: policy.manifest.vocab.size,
      onWarning: options.onWarning,
    });
    const hf = hfConfigFor(policy.config, 'gptConfig');
    const architecture = `${CLASS_PREFIX[hf.modelType]}ForCausalLM`;
    const pad = exportPadTokenId(tokenizer, options.padTokenId);
    const weights = await records(
      transformerTensors(hf.family, policy.config, namedParameters(policy.params), true),
    );
    await writeFolderAtomically(
      outDir,
      { overwrite: options.overwrite, sourceDir: policyDir },
      async (folder) => {
        await folder.json('config.json', {
          architectures: [architecture],
          ...hf.json,
          ...tokenFields(tokenizer, pad),
        });
        await folder.json('generation_config.json', {
          ...tokenFields(tokenizer, pad),
          _from_model_config: false,
        });
        await folder.safetensors('model.safetensors', weights);
        const files = await writeTokenizer(folder, '', tokenizer);
        await folder.text('README.md', policyCard(architecture, hf, policy.config, tokenizer, files, pad));
      },
    );
    return {
      outDir,
      modelType: hf.modelType,
      family: hf.family,
      architecture,
      folders: ['.'],
      padTokenId: pad,
    };
  } finally {
    disposeGpt(policy.params);
  }
}

// ---------------------------------------------------------------- reward models

/** One member group's heads: w [D, n], b [n]. */
interface Heads {
  readonly w: tf.Tensor;
  readonly b: tf.Tensor;
}

/** Backbone variables of a file, without the `member-m.` prefix. */
function strip(vars: Readonly<Record<string, tf.Variable>>, prefix: string): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [name, v] of Object.entries(vars))
    if (name.startsWith(prefix)) out[name.slice(prefix.length)] = v;
  return out;
}

function need<T>(value: T | undefined, file: string, what: string): T {
  if (value === undefined) {
    throw new CheckpointError(`has no ${what}`, {
      location: { file },
      hint: 'the reward model folder does not match its architecture; retrain or restore it',
    });
  }
  return value;
}

interface RewardContext {
  readonly rmDir: string;
  readonly manifest: EnsembleManifest;
  readonly tokenizer: TextTokenizer;
  readonly hf: HfConfigJson;
  readonly pad: number;
  readonly options: ExportRewardOptions;
}

/** score.weight [n, D] and the bias to record (undefined when zero), checked against `headBias`. */
async function scoreOf(
  heads: Heads,
  ctx: RewardContext,
  field: string,
): Promise<{ score: TensorRecord; bias: number[] | undefined }> {
  const bias = Array.from(await heads.b.data());
  const nonZero = bias.some((b) => b !== 0);
  if (nonZero && (ctx.options.headBias ?? 'error') === 'error') {
    throw new ConfigError(
      `head bias ${JSON.stringify(bias.map((b) => Number(b.toPrecision(4))))} is not zero; a Hugging Face score layer has no bias`,
      {
        location: { file: path.join(ctx.rmDir, ENSEMBLE_FILE), field },
        hint: "pass headBias: 'config' to write it to config.json as quorum_score_bias (member rewards then differ by it unless added back; pairwise preferences do not)",
      },
    );
  }
  const score = (await records({ score: tf.transpose(heads.w) })).score as TensorRecord; // [n, D]
  return { score, bias: nonZero ? bias : undefined };
}

const ENSEMBLE_FILE = 'quorum.json';

function labels(n: number, names: (i: number) => string): Record<string, unknown> {
  const id2label = Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), names(i)]));
  const label2id = Object.fromEntries(Array.from({ length: n }, (_, i) => [names(i), i]));
  return { num_labels: n, id2label, label2id, problem_type: 'regression' };
}

/** Writes one `*ForSequenceClassification` folder under `prefix`. */
async function writeSequenceClassifier(
  folder: StagedFolder,
  prefix: string,
  ctx: RewardContext,
  transformer: Record<string, TensorRecord>,
  score: TensorRecord,
  bias: number[] | undefined,
  members: readonly string[],
  card: string,
): Promise<void> {
  const architecture = `${CLASS_PREFIX[ctx.hf.modelType]}ForSequenceClassification`;
  await folder.json(path.join(prefix, 'config.json'), {
    architectures: [architecture],
    ...ctx.hf.json,
    ...labels(score.shape[0] as number, (i) => members[i] ?? `member_${i}`),
    ...tokenFields(ctx.tokenizer, ctx.pad),
    ...(bias === undefined ? {} : { quorum_score_bias: bias }),
    quorum: {
      kind: 'quorum-reward-ensemble',
      architecture: ctx.manifest.architecture,
      members: ctx.manifest.members,
      aggregation: ctx.options.aggregation ?? 'mean',
      tokenizer: ctx.manifest.vocab.id,
      promptFormat: ctx.tokenizer.promptFormat.name,
      padding: 'right',
    },
  });
  await folder.safetensors(path.join(prefix, 'model.safetensors'), { ...transformer, 'score.weight': score });
  await writeTokenizer(folder, prefix, ctx.tokenizer);
  await folder.text(path.join(prefix, 'README.md'), card);
}

/** A reward-ensemble folder → Hugging Face folder(s) (see the file comment). */
export async function exportRewardModel(
  rmDir: string,
  outDir: string,
  options: ExportRewardOptions = {},
): Promise<HfExport> {
  const { ensemble, manifest, tokenizer } = await loadEnsemble(
    rmDir,
    options.architectures ?? builtinArchitectureRegistry(),
    { onWarning: options.onWarning },
  );
  try {
    const config = ensemble.gptConfig;
    const hf = hfConfigFor(config, 'gptConfig');
    const pad = exportPadTokenId(tokenizer, options.padTokenId);
    if (pad !== tokenizer.padId) {
      warn(options)(
        `${rmDir}: the tokenizer pads with id ${tokenizer.padId} (eos or bos); config.json's pad_token_id is ${pad}, an id no row holds, so transformers reads the same token as Quorum`,
      );
    }
    const ctx: RewardContext = { rmDir, manifest, tokenizer, hf, pad, options };
    const files = ensemble.tensorFiles();
    const arch = manifest.architecture;
    const k = manifest.members;
    const base = `${CLASS_PREFIX[hf.modelType]}ForSequenceClassification`;
    const memberNames = Array.from({ length: k }, (_, m) => `member_${m}`);
    const done = (folders: string[]): HfExport => ({
      outDir,
      modelType: hf.modelType,
      family: hf.family,
      architecture: base,
      folders,
      padTokenId: pad,
    });
    const file = (name: string): Record<string, tf.Variable> =>
      need(files[name], path.join(rmDir, name), `${name} in its architecture's files`);

    if (arch === 'single' || arch === 'linear-heads') {
      const heads = file('heads.safetensors');
      const { score, bias } = await scoreOf(
        { w: need(heads['heads.w'], rmDir, 'heads.w'), b: need(heads['heads.b'], rmDir, 'heads.b') },
        ctx,
        'heads.b',
      );
      const transformer = await records(
        transformerTensors(hf.family, config, file('backbone.safetensors'), false),
      );
      await writeFolderAtomically(outDir, { overwrite: options.overwrite, sourceDir: rmDir }, (folder) =>
        writeSequenceClassifier(
          folder,
          '',
          ctx,
          transformer,
          score,
          bias,
          memberNames,
          rewardCard(ctx, 'one', k, bias),
        ),
      );
      return done(['.']);
    }

    if (arch === 'independent') {
      const heads = file('heads.safetensors');
      const members: {
        transformer: Record<string, TensorRecord>;
        score: TensorRecord;
        bias: number[] | undefined;
      }[] = [];
      for (let m = 0; m < k; m++) {
        const vars = strip(file(`member-${m}/backbone.safetensors`), `member-${m}.`);
        const head = {
          w: need(heads[`member-${m}.head.w`], rmDir, `member-${m}.head.w`),
          b: need(heads[`member-${m}.head.b`], rmDir, `member-${m}.head.b`),
        };
        const { score, bias } = await scoreOf(head, ctx, `member-${m}.head.b`);
        members.push({
          transformer: await records(transformerTensors(hf.family, config, vars, false)),
          score,
          bias,
        });
      }
      await writeFolderAtomically(
        outDir,
        { overwrite: options.overwrite, sourceDir: rmDir },
        async (folder) => {
          for (const [m, member] of members.entries()) {
            await writeSequenceClassifier(
              folder,
              `member-${m}`,
              ctx,
              member.transformer,
              member.score,
              member.bias,
              [`member_${m}`],
              rewardCard(ctx, 'member', m, member.bias),
            );
          }
          await folder.text('README.md', rewardCard(ctx, 'independent', k, undefined));
        },
      );
      return done(memberNames.map((_, m) => `member-${m}`));
    }

    if (arch === 'lora') {
      const adapters = file('adapters.safetensors');
      const { score: allScores, bias } = await scoreOf(
        { w: need(adapters['heads.w'], rmDir, 'heads.w'), b: need(adapters['heads.b'], rmDir, 'heads.b') },
        ctx,
        'heads.b',
      );
      const D = config.dModel;
      const transformer = await records(
        transformerTensors(hf.family, config, file('backbone.safetensors'), false),
      );
      const zero: TensorRecord = { dtype: 'F32', shape: [1, D], data: new Float32Array(D) };
      const peft: { config: PeftAdapterConfig; tensors: Record<string, TensorRecord> }[] = [];
      for (let m = 0; m < k; m++) {
        const head: TensorRecord = {
          dtype: 'F32',
          shape: [1, D],
          data: (allScores.data as Float32Array).slice(m * D, (m + 1) * D),
        };
        peft.push(
          await peftAdapter(
            hf.family,
            config,
            manifest.options,
            adapters,
            m,
            head,
            path.join(rmDir, 'adapters.safetensors'),
          ),
        );
      }
      await writeFolderAtomically(
        outDir,
        { overwrite: options.overwrite, sourceDir: rmDir },
        async (folder) => {
          await writeSequenceClassifier(
            folder,
            'base',
            ctx,
            transformer,
            zero,
            undefined,
            ['reward'],
            rewardCard(ctx, 'lora-base', k, undefined),
          );
          for (const [m, adapter] of peft.entries()) {
            const dir = `member-${m}`;
            await folder.json(path.join(dir, 'adapter_config.json'), {
              ...adapter.config,
              ...(bias === undefined ? {} : { quorum_score_bias: bias[m] }),
            });
            await folder.safetensors(path.join(dir, 'adapter_model.safetensors'), adapter.tensors);
            await folder.text(
              path.join(dir, 'README.md'),
              rewardCard(ctx, 'lora-member', m, bias === undefined ? undefined : [bias[m] as number]),
            );
          }
          await folder.text('README.md', rewardCard(ctx, 'lora', k, bias));
        },
      );
      return done(['base', ...memberNames.map((_, m) => `member-${m}`)]);
    }

    throw new ConfigError(`architecture "${arch}" has no Hugging Face export`, {
      location: { file: path.join(rmDir, ENSEMBLE_FILE), field: 'architecture' },
      hint: 'Quorum exports single, linear-heads, independent and lora ensembles',
    });
  } finally {
    ensemble.dispose();
  }
}

// ---------------------------------------------------------------- model cards

function layoutLines(tokenizer: TextTokenizer): string[] {
  const f = tokenizer.promptFormat;
  const prefix = f.prefixIds.length > 0 ? `ids [${f.prefixIds.join(', ')}], then ` : '';
  return [
    `Rows are laid out as Quorum's prompt format \`${f.name}\`: ${prefix}the text`,
    '',
    '```text',
    `${f.head}{instruction}${f.tail}{answer}${f.end}`,
    '```',
    '',
    f.eos ? `followed by the eos id ${tokenizer.eosId}.` : 'ending with the format’s end-of-turn text.',
  ];
}

function tokenizerLines(tokenizer: TextTokenizer): string[] {
  return 'tokenizer.json' in tokenizer.files()
    ? ['The tokenizer files (`tokenizer.json`, …) load with `AutoTokenizer.from_pretrained`.']
    : [
        "The tokenizer is Quorum's compacted GPT-2 vocabulary (`vocab.json`, Quorum's format, not GPT-2's):",
        'encode rows with `@quorum/data` (`loadTokenizer(dir)`); transformers cannot read it.',
      ];
}

function rewardCard(
  ctx: RewardContext,
  kind: 'one' | 'member' | 'independent' | 'lora' | 'lora-base' | 'lora-member',
  n: number,
  bias: number[] | undefined,
): string {
  const { manifest, tokenizer, pad, hf } = ctx;
  const cls = `${CLASS_PREFIX[hf.modelType]}ForSequenceClassification`;
  const agg = ctx.options.aggregation ?? 'mean';
  const what: Record<typeof kind, string> = {
    one: `all ${n} members of a \`${manifest.architecture}\` ensemble: logit i is member i's reward`,
    member: `member ${n} of an \`independent\` ensemble of ${manifest.members} (one logit)`,
    independent: `an \`independent\` ensemble: ${n} folders \`member-0/\` … \`member-${n - 1}/\`, one model each`,
    lora: `a \`lora\` ensemble: \`base/\` (the shared transformer) and ${n} PEFT adapters \`member-0/\` … \`member-${n - 1}/\`, each with its member's head`,
    'lora-base': `the shared transformer of a \`lora\` ensemble of ${n}; its \`score\` is zero: every member's head is in its adapter`,
    'lora-member': `member ${n}'s PEFT LoRA adapter (with its reward head as modules_to_save) for \`../base\``,
  };
  const load =
    kind === 'lora' || kind === 'lora-base' || kind === 'lora-member'
      ? [
          'from peft import PeftModel',
          'from transformers import AutoModelForSequenceClassification',
          '',
          `base = AutoModelForSequenceClassification.from_pretrained("EXPORT/base")`,
          'model = PeftModel.from_pretrained(base, "EXPORT/member-0")  # one member at a time',
        ]
      : [
          'from transformers import AutoModelForSequenceClassification',
          '',
          `model = AutoModelForSequenceClassification.from_pretrained("${kind === 'independent' ? 'EXPORT/member-0' : 'EXPORT'}")`,
        ];
  return [
    '---',
    'library_name: transformers',
    'tags: [reward-model, quorum, ensemble]',
    '---',
    '',
    `# Quorum reward ${kind === 'member' || kind === 'lora-member' ? 'member' : 'ensemble'} (${cls})`,
    '',
    `This folder holds ${what[kind]}.`,
    '',
    `- architecture: \`${manifest.architecture}\`, k = ${manifest.members}, backbone \`${hf.modelType}\` (${manifest.gptConfig.nLayers} layers, d ${manifest.gptConfig.dModel})`,
    `- aggregation: the members' rewards are meant to be combined with \`${agg}\` (Quorum's aggregation rules: mean, lcb, min, uwo, median); their spread is the ensemble's uncertainty`,
    `- tokenizer: \`${manifest.vocab.id}\``,
    ...(bias === undefined
      ? []
      : [
          `- head bias: \`quorum_score_bias\` ${JSON.stringify(bias)} in config.json; add it to the logits for Quorum's rewards`,
        ]),
    '',
    '## Inputs',
    '',
    ...layoutLines(tokenizer),
    '',
    `Pad on the **right** with \`pad_token_id\` ${pad} (an id no real row holds), with an attention mask: the reward is`,
    "read at each row's last real token, which transformers finds as the last token that is not `pad_token_id`.",
    ...tokenizerLines(tokenizer),
    '',
    '## Load it in Python',
    '',
    '```python',
    'import torch',
    ...load,
    '',
    `ids = torch.tensor([row + [${pad}] * (width - len(row)) for row in rows])  # right-padded`,
    `mask = (torch.arange(width)[None] < torch.tensor([len(r) for r in rows])[:, None]).long()`,
    'rewards = model(input_ids=ids, attention_mask=mask).logits  # [B, num_labels]',
    '```',
    '',
    'Written by `@quorum/hf` `exportRewardModel`; `loadHfRewardModel` reads it back into Quorum.',
    '',
  ].join('\n');
}

function policyCard(
  architecture: string,
  hf: HfConfigJson,
  config: GptConfig,
  tokenizer: TextTokenizer,
  files: readonly string[],
  pad: number,
): string {
  return [
    '---',
    'library_name: transformers',
    'tags: [quorum, causal-lm]',
    '---',
    '',
    `# Quorum policy (${architecture})`,
    '',
    `A \`${hf.modelType}\` model: ${config.nLayers} layers, d ${config.dModel}, ${config.nHeads} heads, context ${config.contextLength}, vocabulary ${config.vocabSize}.`,
    `Tokenizer files: ${files.map((f) => `\`${f}\``).join(', ')}. bos ${tokenizer.bosId ?? 'none'}, eos ${tokenizer.eosId}, pad ${pad}.`,
    '',
    ...layoutLines(tokenizer),
    '',
    ...tokenizerLines(tokenizer),
    '',
    '```python',
    'from transformers import AutoModelForCausalLM',
    '',
    'model = AutoModelForCausalLM.from_pretrained("EXPORT")',
    '```',
    '',
    'Written by `@quorum/hf` `exportPolicy`; `loadHfModel` reads it back.',
    '',
  ].join('\n');
}
