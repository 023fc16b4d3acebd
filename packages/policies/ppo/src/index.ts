export {
  defaultPpoCheckpointEvery,
  PPO_RESUMABLE_CHANGES,
  type PpoConfig,
  type PpoConfigInput,
  ppoConfigSchema,
  resolvePpoConfig,
  updatesPerStep,
} from './ppo-config.js';
export {
  AdaptiveKlController,
  clippedPolicyLoss,
  clippedValueLoss,
  FixedKlController,
  fullKl,
  gae,
  type KlController,
  type KlEstimator,
  klPerToken,
  moments,
  type PolicyLossResult,
  sequenceKl,
  tokenRewards,
  type ValueLossResult,
  whiten,
} from './ppo-math.js';
export {
  type EnsembleReward,
  type FunctionReward,
  type PpoStepLog,
  type PpoSummary,
  PpoTrainer,
  type PpoTrainerOptions,
} from './ppo-trainer.js';
