export {
  AlpacaEvalData,
  type AlpacaInstruction,
  type AlpacaPairOptions,
  alpacaEval,
  alpacaPairOptions,
  type Candidate,
  type CandidatePool,
  type Gold,
  type PairReportRow,
  REFERENCE_GENERATOR,
} from './alpaca-eval.js';
export { type Batch, type CollateOptions, collate } from './collate.js';
export {
  buildCorpus,
  CORPUS_SOURCES,
  type Corpus,
  type CorpusCounts,
  type CorpusDocument,
  type CorpusSource,
  type CorpusSplit,
  corpusTokenCount,
  type PackedBlock,
  type PretrainCorpusOptions,
  packDocuments,
  pretrainCorpus,
  splitCorpus,
} from './corpus.js';
export { asObject, fieldError, numberField, optionalStringField, rowId, stringField } from './fields.js';
export {
  alpacaFarmFormat,
  builtinFormatDefinitions,
  builtinFormats,
  conversationPrompt,
  DatasetFormat,
  hhRlhfFormat,
  sftFormat,
  type Turn,
  transcriptTurns,
  trlFormat,
} from './formats.js';
export {
  chatTemplateFormat,
  type HfPromptFormatChoice,
  HfTokenizer,
  type HfTokenizerFiles,
  type HfTokenizerOptions,
} from './hf-tokenizer.js';
export { hhRlhf } from './hh-rlhf.js';
export {
  DEFAULT_MAX_JSON_DEPTH,
  DEFAULT_MAX_LINE_BYTES,
  filterJsonlFile,
  JsonlReader,
  jsonDepth,
  type OnError,
  parseJsonLine,
  type ReadJsonlOptions,
  type ReadStats,
  readJsonl,
} from './jsonl.js';
export {
  type BalanceOptions,
  balanceLength,
  type LengthOf,
  type LongerWinsReport,
  longerWins,
} from './length.js';
export { type LoadOptions, type LoadStats, loadPreferencePairs, loadSftExamples } from './load.js';
export { type LoadTokenizerOptions, loadTokenizer, TOKENIZER_FILE_LIMITS } from './load-tokenizer.js';
export { dataModule, datasets } from './module.js';
export { type JudgePrompt, type MtBenchData, type MtBenchQuestion, mtBench } from './mt-bench.js';
export { datasetPath } from './paths.js';
export {
  type EncodedSequence,
  type EncodeOptions,
  encodePrompt,
  encodePromptResponse,
  formatPrompt,
  INSTRUCTION_FORMAT,
  instructionFormat,
  type PromptFormat,
  type TruncationMode,
} from './template.js';
export {
  type DecodeOptions,
  projectTokenizer,
  projectVocab,
  type TextTokenizer,
  Tokenizer,
} from './tokenizer.js';
export type { ExampleMeta, PreferencePair, Prompt, RowLocation, SftExample, Split } from './types.js';
export { isPreferencePair } from './types.js';
export {
  BASE_VOCAB_SIZE,
  buildVocab,
  countTokens,
  encodeBase,
  type RarePolicy,
  SPECIALS,
  Vocab,
  type VocabJson,
} from './vocab.js';
