/**
 * The Bradley-Terry loss, plain: −log σ(r_chosen − r_rejected − margin), written as softplus(−x) (tfjs's
 * logSigmoid gradient breaks on intermediate tensors; STACK.md). Every member gets its own loss; pairs are
 * weighted per member (bootstrap masks, length-balancing weights).
 */
import * as tf from '@tensorflow/tfjs';

export interface BradleyTerryOptions {
  /** Subtracted from the reward difference (a required margin); 0 = the plain BT loss. */
  readonly margin?: number;
  /** Coefficient of the reward-centering term λ·mean((r_c + r_r)²) that keeps rewards near zero (0 = off). */
  readonly centering?: number;
}

/**
 * Per-member weighted BT loss.
 * chosen, rejected: [k, B] rewards; weights: [k, B] (or undefined = all 1). Returns the scalar sum over
 * members of each member's weighted mean loss, so every member learns at the same rate whatever k is.
 */
export function bradleyTerryLoss(
  chosen: tf.Tensor2D,
  rejected: tf.Tensor2D,
  weights: tf.Tensor2D | undefined,
  options: BradleyTerryOptions = {},
): tf.Scalar {
  return tf.tidy(() => {
    const margin = options.margin ?? 0;
    const diff = tf.sub(tf.sub(chosen, rejected), margin); // [k, B]
    let perPair = tf.softplus(tf.neg(diff)); // [k, B]  −log σ(diff)
    if ((options.centering ?? 0) > 0) {
      perPair = tf.add(perPair, tf.mul(tf.square(tf.add(chosen, rejected)), options.centering as number)); // [k, B]
    }
    if (weights === undefined) return tf.sum(tf.mean(perPair, 1)) as tf.Scalar;
    const num = tf.sum(tf.mul(perPair, weights), 1); // [k]
    const den = tf.maximum(tf.sum(weights, 1), 1e-8); // [k]
    return tf.sum(tf.div(num, den)) as tf.Scalar;
  });
}

/**
 * Pearson correlation of each row of `x` [k, N] with `y` [N] → [k], as a differentiable tensor. A constant
 * row or a constant `y` gives 0 (the denominator carries a small ε), so the loss terms built on it stay
 * finite on a batch of equal lengths.
 */
export function rowPearson(x: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const dx = tf.sub(x, tf.mean(x, 1, true)); // [k, N]
    const dy = tf.sub(y, tf.mean(y)); // [N]
    const cov = tf.sum(tf.mul(dx, dy), 1); // [k]
    const sxx = tf.sum(tf.square(dx), 1); // [k]
    const syy = tf.sum(tf.square(dy)); // []
    return tf.div(cov, tf.sqrt(tf.add(tf.mul(sxx, syy), 1e-12))) as tf.Tensor1D; // [k]
  });
}

/**
 * ODIN's correlation loss (Chen et al. 2024), summed over members: |ρ(r_q, L)| − |ρ(r_l, L)|, Pearson over
 * the answers of a batch. It pushes answer length out of the quality head and into the length head.
 * quality, length: [k, N] rewards of the two heads; lengths: [N] answer lengths in tokens.
 */
export function odinCorrelationLoss(
  quality: tf.Tensor2D,
  length: tf.Tensor2D,
  lengths: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const q = tf.abs(rowPearson(quality, lengths)); // [k]
    const l = tf.abs(rowPearson(length, lengths)); // [k]
    return tf.sum(tf.sub(q, l)) as tf.Scalar;
  });
}

/**
 * ODIN's orthogonality loss, summed over members: |w_q · w_l| / (‖w_q‖‖w_l‖), the |cosine| between each
 * member's quality head and its length head (normalised, so it cannot be met by shrinking the heads).
 * quality, length: [D, k] head weights (column m is member m's).
 */
export function odinOrthogonalityLoss(quality: tf.Tensor2D, length: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(quality, length), 0); // [k]
    const norms = tf.mul(tf.norm(quality, 'euclidean', 0), tf.norm(length, 'euclidean', 0)); // [k]
    return tf.sum(tf.abs(tf.div(dot, tf.add(norms, 1e-12)))) as tf.Scalar;
  });
}

/**
 * The members' agreement, to be added to the loss times λ (the diversity option, after UP-RLHF's
 * diversity regulariser): −mean over pairs of the variance across members of σ(r_c − r_r), each member's
 * probability that the chosen answer wins. Bounded (the variance of numbers in [0, 1] is at most ¼), so it
 * cannot win by inflating rewards; 0 for a single member. chosen, rejected: [k, B].
 */
export function agreementLoss(chosen: tf.Tensor2D, rejected: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.sigmoid(tf.sub(chosen, rejected)); // [k, B]
    const variance = tf.mean(tf.square(tf.sub(p, tf.mean(p, 0, true))), 0); // [B]
    return tf.neg(tf.mean(variance)) as tf.Scalar;
  });
}
