/**
 * The bits of tfjs-wasm's backend the native kernels use. Tensors live in the wasm heap; the addon
 * writes into Float32Array views of it. Allocate the output FIRST (`makeOutput` may grow the heap,
 * which detaches earlier views), then take the views.
 */
import type * as tf from '@tensorflow/tfjs';

export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function asWasm(backend: unknown): WasmHeapBackend {
  return backend as WasmHeapBackend;
}

/** A float32 view of a tensor in the heap (take it after every makeOutput of the kernel). */
export function f32(backend: WasmHeapBackend, t: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/**
 * Allocates the output, runs `fill` with it and returns it; if `fill` throws, frees the output
 * so a failing kernel does not leak heap memory.
 */
export function withOutput(
  backend: WasmHeapBackend,
  shape: number[],
  fill: (out: tf.TensorInfo) => void,
  dtype: tf.DataType = 'float32',
): tf.TensorInfo {
  const out = backend.makeOutput(shape, dtype);
  try {
    fill(out);
  } catch (error) {
    backend.disposeData(out.dataId, true);
    throw error;
  }
  return out;
}

/**
 * Several outputs (a multi-output kernel): allocates them all, then runs `fill` (take the views
 * inside it, after the last allocation) and returns them; if `fill` throws, frees every one.
 */
export function withOutputs(
  backend: WasmHeapBackend,
  shapes: readonly number[][],
  fill: (outs: tf.TensorInfo[]) => void,
  dtype: tf.DataType = 'float32',
): tf.TensorInfo[] {
  const outs: tf.TensorInfo[] = [];
  try {
    for (const shape of shapes) outs.push(backend.makeOutput(shape, dtype));
    fill(outs);
  } catch (error) {
    for (const out of outs) backend.disposeData(out.dataId, true);
    throw error;
  }
  return outs;
}
