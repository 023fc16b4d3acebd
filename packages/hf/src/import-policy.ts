/**
 * A Hugging Face *ForCausalLM folder → a Quorum policy folder (`quorum import`): the weights as Quorum's
 * backbone.safetensors, the tokenizer files as they were read, and quorum.json recording where it came
 * from. The result loads like any policy from `quorum sft` (generate, sft, train-rm --init, ppo --policy).
 */
import { disposeGpt, type PolicyManifest, savePolicy } from '@quorum/backbone';
import { loadTokenizer } from '@quorum/data';
import { writeFolderAtomically } from './export-folder.js';
import { type HfSource, loadHfModel, readHfModelConfig } from './load.js';

export interface ImportPolicyOptions {
  /** Replace a non-empty `outDir` (default false: refused). */
  readonly overwrite?: boolean | undefined;
  /** Called with the tokenizer's notes (pad falling back to eos, …); default console.warn. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

export interface ImportedPolicy {
  readonly outDir: string;
  readonly manifest: PolicyManifest;
  readonly source: HfSource;
}

/**
 * Reads `hfDir` (config.json, then the tokenizer against its vocab_size, then the weights, each checked
 * before the next is read) and writes a Quorum policy folder to `outDir`, atomically (a temporary sibling
 * folder renamed when complete). `outDir` may not be inside `hfDir`.
 */
export async function importPolicy(
  hfDir: string,
  outDir: string,
  options: ImportPolicyOptions = {},
): Promise<ImportedPolicy> {
  const { config: checked } = await readHfModelConfig(hfDir);
  const tokenizer = await loadTokenizer(hfDir, {
    vocabSize: checked.vocabSize,
    onWarning: options.onWarning,
  });
  const model = await loadHfModel(hfDir);
  try {
    let manifest: PolicyManifest | undefined;
    await writeFolderAtomically(
      outDir,
      { overwrite: options.overwrite, sourceDir: hfDir },
      async (folder) => {
        manifest = await savePolicy(folder.root, {
          config: model.config,
          params: model.params,
          vocab: { id: tokenizer.id, size: tokenizer.vocabSize },
          tokenizerFiles: tokenizer.files(),
          training: {
            kind: 'import',
            from: 'huggingface',
            modelType: model.source.modelType,
            family: model.source.family,
            files: model.source.files,
            dtypes: model.source.dtypes,
          },
        });
      },
    );
    return { outDir, manifest: manifest as PolicyManifest, source: model.source };
  } finally {
    disposeGpt(model.params);
  }
}
