export {
  type AddonLoad,
  type AddonLocation,
  type BuildStatus,
  type CpuFeatures,
  defaultAddonPath,
  defaultStatusPath,
  loadAddon,
  type NativeAddon,
  readBuildStatus,
} from './addon.js';
export {
  kernelsNativeModule,
  type NativeBackendOptions,
  nativeBackend,
  nativeBackendDefinition,
} from './backend.js';
export { broadcastMeta } from './elementwise.js';
export { isFusedKernel, NATIVE_FUSED_KERNELS, type NativeFusedKernelName } from './fused.js';
export { NATIVE_GRADIENTS, type NativeGradientName } from './gradients.js';
export {
  DEFAULT_NATIVE_KERNELS,
  installNativeKernels,
  NATIVE_KERNELS,
  type NativeKernelName,
  type NativeKernelOptions,
  type NativeStatus,
  nativeStatus,
  resolveThreads,
  uninstallNativeKernels,
} from './install.js';
export { type MatMulPlan, planMatMul } from './matmul.js';
