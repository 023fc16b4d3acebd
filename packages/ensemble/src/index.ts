export {
  type BuildContext,
  EnsembleArchitecture,
  type ParamCounts,
  type PhaseFeatures,
  type PhaseKind,
  type RewardEnsemble,
  type TokenBatch,
  type TrainableEnsemble,
  type TrainingPhase,
} from './architecture.js';
export {
  backboneVariables,
  countParameters,
  headVariables,
  makeBackbone,
  makeHeads,
} from './architectures/common.js';
export { type LoraArchitectureOptions, loraArchitectureOptions } from './architectures/lora.js';
export {
  disposeBatch,
  type EncodedPair,
  type EncodedPairs,
  encodeAnswer,
  encodePair,
  encodePairs,
  pairTokenBatch,
  tokenBatch,
} from './batches.js';
export {
  ENSEMBLE_MANIFEST,
  type EnsembleManifest,
  type LoadEnsembleOptions,
  type LoadedEnsemble,
  loadEnsemble,
  readEnsembleManifest,
  type SavedTokenizer,
  type SaveEnsembleOptions,
  saveEnsemble,
} from './checkpoint.js';
export {
  type EvaluateOptions,
  evaluatePairs,
  meanOverMembers,
  type ScoreOptions,
  scoreAnswers,
  scoreSequences,
} from './evaluate.js';
export {
  agreementLoss,
  type BradleyTerryOptions,
  bradleyTerryLoss,
  odinCorrelationLoss,
  odinOrthogonalityLoss,
  rowPearson,
} from './loss.js';
export {
  expectedCalibrationError,
  type PairScores,
  pearson,
  type RewardMetrics,
  rewardMetrics,
  sigmoid,
} from './metrics.js';
export {
  builtinArchitectureRegistry,
  builtinArchitectures,
  ensembleModule,
  independentArchitecture,
  linearHeadsArchitecture,
  loraArchitecture,
  singleArchitecture,
} from './module.js';
export {
  parseDuration,
  type RewardTrainConfig,
  type RewardTrainConfigInput,
  resolveRewardTrainConfig,
  rewardTrainConfigSchema,
} from './reward-config.js';
export {
  memberSubsets,
  type PhaseSummary,
  type RewardPairCounts,
  type RewardProgress,
  type RewardTrainOptions,
  type RewardTrainResult,
  stepsForBudget,
  trainRewardEnsemble,
  validationLoss,
} from './reward-trainer.js';
