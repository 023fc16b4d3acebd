/**
 * `quorum export`: any Quorum model folder to Hugging Face's layout, chosen by its quorum.json `kind` — a
 * policy (`quorum sft`, `ppo`, `import`) becomes *ForCausalLM (`exportPolicy`), a reward ensemble
 * (`quorum train-rm`) *ForSequenceClassification (`exportRewardModel`).
 */
import { CheckpointError } from '@quorum/core';
import { type ExportRewardOptions, exportPolicy, exportRewardModel, type HfExport } from './export.js';
import { locate, readJson, realFolder } from './files.js';

const MANIFEST = 'quorum.json';
const MANIFEST_LIMIT = 16 * 1024 * 1024;

/** What a Quorum folder holds, from its quorum.json. */
export type QuorumFolderKind = 'policy' | 'reward-ensemble';

/** The kind of the Quorum model folder `dir` (quorum.json read confined and size-checked). */
export async function quorumFolderKind(dir: string): Promise<QuorumFolderKind> {
  const real = await realFolder(dir);
  const file = await locate(real, dir, MANIFEST, MANIFEST_LIMIT);
  if (file === undefined) {
    throw new CheckpointError(`has no ${MANIFEST}`, {
      location: { file: dir },
      hint: 'pass a folder written by quorum sft, ppo, import or train-rm (a Hugging Face folder needs no export)',
    });
  }
  const json = await readJson(file);
  const kind = typeof json === 'object' && json !== null ? (json as Record<string, unknown>).kind : undefined;
  if (kind === 'quorum-policy') return 'policy';
  if (kind === 'quorum-reward-ensemble') return 'reward-ensemble';
  throw new CheckpointError(`has kind ${JSON.stringify(kind)}, which Quorum cannot export`, {
    location: { file: file.shown, field: 'kind' },
    hint: 'export a policy (kind "quorum-policy") or a reward ensemble (kind "quorum-reward-ensemble")',
  });
}

/** Exports `dir` by its kind; reward-only options are ignored for a policy. */
export async function exportModel(
  dir: string,
  outDir: string,
  options: ExportRewardOptions = {},
): Promise<HfExport & { readonly kind: QuorumFolderKind }> {
  const kind = await quorumFolderKind(dir);
  const result =
    kind === 'policy'
      ? await exportPolicy(dir, outDir, {
          overwrite: options.overwrite,
          onWarning: options.onWarning,
          padTokenId: options.padTokenId,
        })
      : await exportRewardModel(dir, outDir, options);
  return { ...result, kind };
}
