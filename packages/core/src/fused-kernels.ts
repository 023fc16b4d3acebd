/**
 * Fused kernels: the contract between a compute backend that offers them (e.g. `native`) and the
 * models that use them (@quorum/backbone). A backend registers tfjs kernels under these names for its
 * tfjs backend; a model asks `hasFusedKernel(name)` and otherwise composes the same math from stock ops.
 * Every kernel is float32. Shapes: N rows, D features (x [N, D] stands for any rank ≥ 1: N is the product of the
 * leading axes, and the per-row outputs have x's shape without its last axis).
 *
 * - `QuorumGelu`          inputs { x }                          → y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))), x's shape
 * - `QuorumGeluGrad`      inputs { dy, x }                      → dx = dy · gelu′(x), x's shape
 * - `QuorumLayerNorm`     inputs { x [N, D], gamma [D], beta [D] }, attrs { epsilon }
 *                         → [y [N, D], mean [N], rstd [N]]; y = (x − mean)·rstd·gamma + beta, rstd = 1/√(var + ε)
 *                           (biased variance over the last axis)
 * - `QuorumLayerNormGrad` inputs { dy [N, D], x [N, D], gamma [D], mean [N], rstd [N] }
 *                         → [dx [N, D], dgamma [D], dbeta [D]]
 * - `QuorumSilu`          inputs { x }                          → y = x·σ(x), x's shape (σ(x) = 1/(1 + e^−x))
 * - `QuorumSiluGrad`      inputs { dy, x }                      → dx = dy · σ(x)·(1 + x·(1 − σ(x))), x's shape
 * - `QuorumRmsNorm`       inputs { x [N, D], gamma [D] }, attrs { epsilon }
 *                         → [y [N, D], rstd [N]]; y = x·rstd·gamma, rstd = 1/√(mean(x²) + ε) (over the last axis)
 * - `QuorumRmsNormGrad`   inputs { dy [N, D], x [N, D], gamma [D], rstd [N] }
 *                         → [dx [N, D], dgamma [D]]; with x̂ = x·rstd and g = dy·gamma:
 *                           dx = rstd·(g − x̂·mean(g·x̂)) (mean over the last axis), dgamma = Σ over rows of dy·x̂
 * - `QuorumAdamW`         inputs { param, grad, m, v } (one shape), attrs { lr, beta1, beta2, epsilon, weightDecay,
 *                         biasCorrection1, biasCorrection2, gradScale } → [param′, m′, v′] (torch.optim.AdamW):
 *                           g = grad·gradScale;  m′ = β1·m + (1 − β1)·g;  v′ = β2·v + (1 − β2)·g²
 *                           param′ = param·(1 − lr·weightDecay) − lr·(m′/bc1) / (√(v′/bc2) + ε)
 *                         (weightDecay 0 for parameters that do not decay; bc = 1 − βᵗ)
 */
import * as tf from '@tensorflow/tfjs';

export const FUSED_KERNELS = {
  gelu: 'QuorumGelu',
  geluGrad: 'QuorumGeluGrad',
  layerNorm: 'QuorumLayerNorm',
  layerNormGrad: 'QuorumLayerNormGrad',
  silu: 'QuorumSilu',
  siluGrad: 'QuorumSiluGrad',
  rmsNorm: 'QuorumRmsNorm',
  rmsNormGrad: 'QuorumRmsNormGrad',
  adamW: 'QuorumAdamW',
} as const;

export type FusedKernelName = (typeof FUSED_KERNELS)[keyof typeof FUSED_KERNELS];

/** Whether the active tfjs backend has a kernel registered under `name`. */
export function hasFusedKernel(name: FusedKernelName): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
