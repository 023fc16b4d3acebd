export {
  type TokenBatch,
  type ParamCounts,
  type PhaseKind,
  type TrainingPhase,
  type RewardEnsemble,
  type TrainableEnsemble,
  type BuildContext,
  EnsembleArchitecture,
} from './architecture.js';
export { bradleyTerryLoss, type BradleyTerryOptions } from './loss.js';
export {
  rewardMetrics,
  expectedCalibrationError,
  pearson,
  sigmoid,
  type PairScores,
  type RewardMetrics,
} from './metrics.js';
export { type EncodedPair, encodePair, encodeAnswer, tokenBatch, pairTokenBatch, disposeBatch } from './batches.js';
export {
  ENSEMBLE_MANIFEST,
  type EnsembleManifest,
  type SaveEnsembleOptions,
  type LoadedEnsemble,
  saveEnsemble,
  readEnsembleManifest,
  loadEnsemble,
} from './checkpoint.js';
export {
  rewardTrainConfigSchema,
  type RewardTrainConfig,
  type RewardTrainConfigInput,
  resolveRewardTrainConfig,
} from './reward-config.js';
export { type RewardProgress, type RewardTrainOptions, type RewardTrainResult, trainRewardEnsemble } from './reward-trainer.js';
export { type ScoreOptions, type EvaluateOptions, scoreAnswers, scoreSequences, evaluatePairs, meanOverMembers } from './evaluate.js';
export {
  singleArchitecture,
  independentArchitecture,
  linearHeadsArchitecture,
  builtinArchitectures,
  ensembleModule,
  builtinArchitectureRegistry,
} from './module.js';
export { makeBackbone, makeHeads, headVariables, backboneVariables, countParameters } from './architectures/common.js';
