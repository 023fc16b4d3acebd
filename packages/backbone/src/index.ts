export {
  assignNamed,
  decodeGpt,
  decodeOptimizerState,
  encodeGpt,
  encodeOptimizerState,
  loadGpt,
  saveGpt,
} from './checkpoint.js';
export {
  type GptConfig,
  type GptConfigInput,
  type GptPresetName,
  gptConfigSchema,
  gptParameterShapes,
  gptPreset,
  gptPresetNames,
  type Positional,
  paramCount,
  resolveGptConfig,
} from './config.js';
export {
  composedGelu,
  composedLayerNorm,
  fusedKernelsActive,
  gelu,
  layerNorm,
  setFusedKernels,
} from './fused.js';
export {
  type GenerateOptions,
  type GenerateResult,
  generate,
  type SamplingOptions,
  sampleFromLogits,
} from './generate.js';
export { explicitTransposes, setExplicitTransposes } from './matmul.js';
export {
  disposeGpt,
  type GptBlockParams,
  type GptForwardOptions,
  type GptParams,
  gatherLogProbs,
  gptForward,
  gptHidden,
  gptLastHidden,
  initGpt,
  type KvLayer,
  type LinearHook,
  type LinearModule,
  type LinearSite,
  lastTokenHidden,
  lmLogits,
  loadGptParameters,
  type MemberExpansion,
  type MemberWeights,
  namedParameters,
  positionsFromMask,
  tokenEntropy,
  tokenLogProbs,
} from './model.js';
export {
  AdamW,
  type AdamWConfig,
  type AdamWHyper,
  composedAdamWUpdate,
  globalNorm,
  type LrSchedule,
  learningRateAt,
  type OptimizerState,
  type StepInfo,
  valueAndGrads,
} from './optim.js';
export {
  type LoadedPolicy,
  loadPolicy,
  POLICY_MANIFEST,
  POLICY_WEIGHTS,
  type PolicyManifest,
  type SavePolicyOptions,
  savePolicy,
} from './policy.js';
export { resolveSftConfig, type SftConfig, type SftConfigInput, sftConfigSchema } from './sft-config.js';
export {
  makeSftBatch,
  type SftBatch,
  type SftExample,
  type SftProgress,
  type SftSummary,
  SftTrainer,
  type SftTrainerOptions,
  sftLoss,
} from './sft-trainer.js';
export { checkpointFiles, decodeGptCheckpoint } from './train-state.js';
