export {
  type CompareItem,
  flipVerdict,
  isJudgeError,
  JUDGE_ERROR,
  Judge,
  type JudgeContext,
  judgeError,
  type PriorTurn,
  type ScoreItem,
  type Verdict,
} from './judge.js';
export {
  type LengthControlledOptions,
  type LengthControlledWinRate,
  type LengthRow,
  lengthControlledWinRate,
  type RewardLengthCorrelation,
  rewardLengthCorrelation,
} from './length-controlled.js';
export { type CacheEntry, cacheKey, VerdictCache, type VerdictCacheOptions } from './llm/cache.js';
export {
  JUDGE_ENV,
  type LlmJudge,
  type LlmJudgeEnvironment,
  type LlmJudgeOptions,
  type LlmJudgeStats,
  type LlmVerdict,
  llmJudge,
  llmJudgeOptions,
  OPENAI_ENV,
} from './llm/llm-judge.js';
export {
  type ChatMessage,
  fillTemplate,
  type PairwiseReading,
  pairwiseMessages,
  parsePairwise,
  parseRating,
  REFERENCE_CATEGORIES,
  singleMessages,
  type TopLogprobs,
} from './llm/prompts.js';
export {
  builtinJudgeDefinitions,
  evalModule,
  judgeRegistry,
  type LoadRewardModelJudgeOptions,
  llmJudgeDefinition,
  loadRewardModelJudge,
  preferenceTableJudgeDefinition,
  rewardModelJudgeDefinition,
  rewardModelJudgeOptions,
} from './module.js';
export { preferenceTableJudge, shippedPreferenceTableJudge } from './preference-table.js';
export { renderHtml, reportCharts } from './report/html.js';
export { renderMarkdown } from './report/markdown.js';
export { type ChartPoint, type ChartSeries, type LineChartSpec, lineChart } from './report/svg.js';
export {
  type ArchitectureReport,
  type Baseline,
  type BaselineCurve,
  type BaselineCurvePoint,
  type BestOfNRow,
  type PpoPoint,
  REPORT_SCHEMA_VERSION,
  type Report,
  type ReportMeta,
} from './report/types.js';
export { assertValidReport, REPORT_SCHEMA_URL, reportSchema, validateReport } from './report/validate.js';
export { type WrittenReport, writeReport } from './report/write.js';
export { promptWithHistory, type RewardModelJudgeOptions, rewardModelJudge } from './reward-model-judge.js';
export {
  type CurvePoint,
  type CurveSeries,
  type MeanStderr,
  meanStderr,
  type Outcome,
  outcomeOf,
  overoptimizationCurve,
  type SeedSpread,
  seedSpread,
  type WinRate,
  winRate,
} from './win-rate.js';
