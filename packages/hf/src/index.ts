export {
  HF_MODEL_TYPES,
  type HfConfigJson,
  type HfFamily,
  type HfModelConfig,
  hfConfigFor,
  hfModelConfig,
} from './config.js';
export {
  type ExportOptions,
  type ExportRewardOptions,
  exportPadTokenId,
  exportPolicy,
  exportRewardModel,
  type HfExport,
} from './export.js';
export { exportModel, type QuorumFolderKind, quorumFolderKind } from './export-any.js';
export type { PeftAdapterConfig } from './export-peft.js';
export { type ImportedPolicy, type ImportPolicyOptions, importPolicy } from './import-policy.js';
export { type HfRewardModel, type LoadHfRewardOptions, loadHfRewardModel } from './import-reward.js';
export {
  HF_CONFIG_FILE,
  HF_GENERATION_CONFIG_FILE,
  type HfGeneration,
  type HfModel,
  type HfSource,
  loadHfModel,
  readHfModelConfig,
} from './load.js';
export { type HfMapping, type HfMappingOptions, hfMapping } from './mapping.js';
export {
  HF_WEIGHT_DTYPES,
  HF_WEIGHTS_FILE,
  HF_WEIGHTS_INDEX_FILE,
  type HfTensorInfo,
  type HfWeightIndex,
  indexHfWeights,
  readHfWeights,
} from './weights.js';
