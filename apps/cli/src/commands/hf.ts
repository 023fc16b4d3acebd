/**
 * `quorum import` and `quorum export`: Hugging Face folders in and out (the work is @quorum/hf's
 * `importPolicy` and `exportModel`).
 */
import { exportModel, importPolicy } from '@quorum/hf';
import { type Command, Option } from 'commander';
import { nonNegativeInt } from '../args.js';
import { architectureRegistry, createContext, type GlobalOptions, startCompute } from '../context.js';
import { outOption, overwriteOption } from '../options.js';

interface ImportOptions {
  out: string;
  overwrite?: boolean;
}

interface ExportOptions {
  model: string;
  format: 'hf';
  out: string;
  overwrite?: boolean;
  agg: string;
  headBias: 'error' | 'config';
  padTokenId?: number;
}

const note = (m: string): void => {
  process.stderr.write(`quorum: ${m}\n`);
};

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('turn a Hugging Face *ForCausalLM folder into a Quorum policy folder')
    .argument(
      '<dir>',
      'the Hugging Face model folder (config.json, *.safetensors, tokenizer.json); nothing is downloaded',
    )
    .addOption(outOption('the policy folder to write (quorum.json, backbone.safetensors, tokenizer files)'))
    .addOption(overwriteOption('replace a non-empty --out'))
    .addHelpText(
      'after',
      `
Supported model_type: llama (SmolLM, TinyLlama), qwen2, gpt2 (distilgpt2), gpt_neox (Pythia); weights F32,
F16 or BF16 (kept as float32). Every tensor name, dtype and shape is checked against config.json, and the
tokenizer against vocab_size, before a weight is read. Every command that reads a policy also takes hf:DIR
directly (sft --init, train-rm --init, ppo --policy, generate --model); import once to reuse the folder.

Examples:
  $ huggingface-cli download HuggingFaceTB/SmolLM-135M --local-dir models/SmolLM-135M   # outside Quorum
  $ quorum import models/SmolLM-135M --out runs/smollm
  $ quorum generate --model runs/smollm --prompt "Name three colours."`,
    )
    .action(async (dir: string, opts: ImportOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const result = await importPolicy(dir, opts.out, { overwrite: opts.overwrite, onWarning: note });
      const c = result.manifest.gptConfig;
      process.stdout.write(
        `imported ${result.source.modelType} (${c.nLayers} layers, d ${c.dModel}, vocabulary ${c.vocabSize}, context ${c.contextLength}; ${Object.entries(
          result.source.dtypes,
        )
          .map(([d, n]) => `${n} ${d}`)
          .join(', ')} tensors) → ${opts.out}\n`,
      );
    });
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a Quorum policy or reward ensemble as a Hugging Face folder transformers loads')
    .addOption(
      new Option(
        '--model <dir>',
        'a policy folder (→ *ForCausalLM) or a reward-model folder from train-rm (→ *ForSequenceClassification)',
      ).makeOptionMandatory(),
    )
    .addOption(new Option('--format <format>', 'output layout').choices(['hf']).default('hf'))
    .addOption(outOption('the Hugging Face folder to write'))
    .addOption(overwriteOption('replace a non-empty --out'))
    .addOption(
      new Option('--agg <rule>', 'the aggregation rule the model card recommends for the k rewards').default(
        'mean',
      ),
    )
    .addOption(
      new Option(
        '--head-bias <how>',
        "a reward head's non-zero bias (transformers' score layer has none): error, or config (kept in config.json as quorum_score_bias)",
      )
        .choices(['error', 'config'])
        .default('config'),
    )
    .addOption(
      new Option(
        '--pad-token-id <id>',
        "config.json's pad_token_id (default: an id no real row holds, see packages/hf/README.md)",
      ).argParser(nonNegativeInt),
    )
    .addHelpText(
      'after',
      `
Reward ensembles: single and linear-heads become one folder with num_labels = k (logit i = member i's
reward); independent becomes member-0/ … member-(k−1)/; lora becomes base/ plus one PEFT adapter folder per
member (adapter_config.json, adapter_model.safetensors, the head under modules_to_save). Each folder gets
the tokenizer files and a README.md model card with a Python loading snippet. Written atomically.

Examples:
  $ quorum export --model runs/rm --out exports/rm
  $ quorum export --model runs/sft --out exports/policy
  # Python: AutoModelForSequenceClassification.from_pretrained("exports/rm")`,
    )
    .action(async (opts: ExportOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const result = await exportModel(opts.model, opts.out, {
        overwrite: opts.overwrite,
        onWarning: note,
        padTokenId: opts.padTokenId,
        architectures: architectureRegistry(ctx),
        headBias: opts.headBias,
        aggregation: opts.agg,
      });
      process.stdout.write(
        `exported the ${result.kind} as ${result.architecture} (${result.modelType}; ${result.folders.length === 1 ? 'one folder' : `folders ${result.folders.join(', ')}`}, pad_token_id ${result.padTokenId}) → ${opts.out}\n`,
      );
    });
}
