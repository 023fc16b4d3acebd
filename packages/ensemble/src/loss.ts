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
