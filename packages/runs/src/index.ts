export { type AnsweringPolicy, type AnswerOptions, answerPrompts, promptRoom } from './answer.js';
export {
  ALPACA_EVAL,
  type BestOfNRunOptions,
  type BestOfNRunResult,
  loadPools,
  loadPrompts,
  type OfflineBestOfNOptions,
  type OfflineBestOfNResult,
  type OnlineBestOfNOptions,
  type OnlineBestOfNResult,
  renderOfflineTable,
  runBestOfN,
  scoreCandidates,
} from './best-of-n.js';
export {
  type Bench,
  type EvalFailure,
  type EvalRunOptions,
  type EvalRunResult,
  type EvalSummary,
  formatEvalSummary,
  runEval,
} from './eval.js';
export { type EvalRmRunOptions, evalPairs, evaluateRewardModel } from './eval-rm.js';
export { type SampleRunOptions, sampleAnswers } from './generate.js';
export { cacheDir, ensurePresetSft, presetSftDir } from './init.js';
export {
  chooseMaxLength,
  DEFAULT_MAX_LENGTH,
  lengthQuantiles,
  type MaxLengthChoice,
  type MaxLengthChoiceOptions,
  maxLengthFromLengths,
  pairLengths,
  resolveMaxLength,
  truncatedShare,
} from './length.js';
export {
  checkPolicySource,
  folderTokenizer,
  HF_SOURCE_PREFIX,
  hfSourceDir,
  loadPolicyWithTokenizer,
  loadRewardModel,
  type PolicyOrigin,
  type PolicyWithTokenizer,
} from './load.js';
export { formatPpoStep, type PpoCheckpointView, type PpoRunOptions, runPpo } from './ppo.js';
export { PRESET_NAMES, PRESETS, type PresetName, type RunPreset, resolvePreset } from './presets.js';
export { RunInterrupted, type RunProgress, silentProgress } from './progress.js';
export {
  REPRODUCE_ARCHITECTURES,
  REPRODUCE_MEMBERS,
  REPRODUCE_RULES,
  type ReproduceOptions,
  type ReproduceStrategies,
  reproduce,
  resolveReproduceStrategies,
} from './reproduce.js';
export {
  dedupePairs,
  formatMetrics,
  loadPairs,
  metricsSummary,
  type PairFileCounts,
  type PairSource,
  type ResolvedArchitecture,
  type RewardRunOptions,
  type RewardRunResult,
  resolveArchitecture,
  runRewardTraining,
} from './reward.js';
export {
  parseScoreRow,
  type ScoreRow,
  type ScoreRunOptions,
  type ScoreRunResult,
  scoreFile,
} from './score.js';
export { type CorpusFacts, runSft, type SftRunOptions, type SftRunResult, toTokenExamples } from './sft.js';
export { type SubsetOptions, seededSubset } from './subset.js';
