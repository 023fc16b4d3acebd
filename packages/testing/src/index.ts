export { useTestBackend } from './backend.js';
export {
  type ContractCase,
  type ContractContext,
  type ContractSuite,
  casesFromRegistry,
  defineContractSuite,
  type RegistryCaseOptions,
} from './contract.js';
export {
  ALPACA_EVAL_PAIRS,
  expectArraysClose,
  type PreferenceRowFixture,
  randomNormalTensor,
  randomRewards,
  randomUniformTensor,
} from './fixtures.js';
export { expectNoTensorLeaks, type LeakCheckOptions, TensorLeakError, withLeakCheck } from './leaks.js';
