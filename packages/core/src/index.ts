export {
  type ErrorLocation,
  type QuorumErrorOptions,
  formatLocation,
  QuorumError,
  ConfigError,
  DataError,
  CheckpointError,
  RegistryError,
  BackendError,
  NumericalError,
} from './errors.js';
export { Rng, type RngState } from './rng.js';
export { type StrategySpec, parseStrategySpec, resolveOptions, describeValue } from './config.js';
export {
  type StrategyDefinition,
  type ExtensionPoint,
  defineStrategy,
  defineExtensionPoint,
  StrategyRegistry,
} from './registry.js';
export {
  ExtensionPointToken,
  contribute,
  declarePoint,
  strategyModule,
  createQuorumContainer,
  extensionPoints,
  registryFor,
  collectRegistries,
  requireRegistry,
  Container,
  ContainerModule,
  type ContainerModuleLoadOptions,
} from './container.js';
export {
  type Tfjs,
  type ProbeResult,
  type ActivationInfo,
  ComputeBackend,
  type ActiveBackend,
  type InitComputeOptions,
  type ModuleImporter,
  type WasmBackendLike,
  cpuBackend,
  wasmBackend,
  tensorflowBackend,
  wasmBinaryDir,
  registerWasmTrainingKernels,
  builtinBackendDefinitions,
  builtinBackendRegistry,
  activeBackend,
  initCompute,
  resetComputeForTests,
  TENSORFLOW_INSTALL_HINT,
} from './backend.js';
export { coreModule } from './module.js';
