/**
 * Gradient functions that replace tfjs's own while the native kernels are installed, where the stock
 * one spends its time outside any kernel. Each gives bit-identical values to the stock gradient.
 *
 * `Mean`: tfjs computes dx = (reshape(dy) · ones(x.shape)) / n, and `ones` fills a JavaScript
 * Float32Array of x's size element by element and uploads it; for the reference model's layer norms
 * that was the largest cost of a training step outside the matmuls (leaving this out: +164 ms on a
 * 236 ms step, bench/compare-step.mjs). dy·1 is exact, so broadcastTo(reshape(dy) / n) is the same
 * tensor: one division on the small tensor and one Tile (a native strided copy).
 */
import * as tf from '@tensorflow/tfjs';

/** Gradients this package can replace (by the kernel they differentiate). */
export const NATIVE_GRADIENTS = ['Mean'] as const;
export type NativeGradientName = (typeof NATIVE_GRADIENTS)[number];

const meanGradient: tf.GradConfig = {
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const { axis } = attrs as unknown as { axis: number | number[] };
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const [, reduceShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const reduceSize = tf.util.sizeFromShape(reduceShape);
    return {
      x: () => {
        const expandedShape = x.shape.slice();
        for (const a of axes) expandedShape[a] = 1;
        const scaled = tf.div(tf.reshape(dy as tf.Tensor, expandedShape), reduceSize); // [.., 1, ..]
        return tf.broadcastTo(scaled, x.shape); // x.shape
      },
    };
  },
};

export function nativeGradient(name: NativeGradientName): tf.GradConfig {
  switch (name) {
    case 'Mean':
      return meanGradient;
  }
}

/** The native kernel a replacement gradient relies on (without it the stock gradient is faster). */
export function gradientNeeds(name: NativeGradientName): string {
  switch (name) {
    case 'Mean':
      return 'Tile'; // the stock wasm Tile is slower than tfjs's `ones` path
  }
}
