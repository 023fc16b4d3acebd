/**
 * Data-movement kernels: Identity and same-dtype Cast share the input's heap buffer (reference counted,
 * as tfjs's `cpu` backend and the wasm backend's own Reshape do) instead of copying it; Transpose,
 * Slice and Tile (tf.broadcastTo) run as one strided copy on the addon; GatherV2 (batchDims 0) and
 * UnsortedSegmentSum (the embedding forward and backward) run natively. 4-byte dtypes (float32,
 * int32); others fall back.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './addon.js';
import { asWasm, type WasmHeapBackend, withOutput } from './wasm-heap.js';

type Fallback = (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | tf.TensorInfo[];

interface RefCountingBackend {
  incRef(dataId: object): void;
}

const fourBytes = (dtype: tf.DataType): boolean => dtype === 'float32' || dtype === 'int32';

function heap4(backend: WasmHeapBackend, t: tf.TensorInfo): Float32Array | Int32Array {
  return backend.typedArrayFromHeap(t) as Float32Array | Int32Array;
}

/** A new tensor on the same buffer (tfjs tensors are immutable; the backend frees it at refCount 0). */
function share(backend: unknown, x: tf.TensorInfo, dtype: tf.DataType = x.dtype): tf.TensorInfo {
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype };
}

/** Identity (tf.clone, and every tensor the tape saves for the backward pass): no copy. */
export function identityKernel(fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string' || x.dtype === 'complex64') return fallback(args);
    return share(args.backend, x);
  };
}

/** Cast to the dtype the tensor already has (e.g. the Multiply gradient's cast to float32): no copy. */
export function castKernel(fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
    if (dtype !== x.dtype || dtype === 'string' || dtype === 'complex64') return fallback(args);
    return share(args.backend, x);
  };
}

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = (s[d + 1] as number) * (shape[d + 1] as number);
  return s;
}

/**
 * A strided view as the addon's meta [rank, ...shape, ...strides, offset]: size-1 axes dropped, and an
 * axis merged into the previous one wherever the input is contiguous across both.
 */
export function stridedMeta(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Int32Array {
  const dims: { n: number; s: number }[] = [];
  shape.forEach((n, d) => {
    if (n === 1) return;
    const prev = dims[dims.length - 1];
    const s = strides[d] as number;
    if (prev !== undefined && prev.s === s * n) {
      prev.n *= n;
      prev.s = s;
    } else {
      dims.push({ n, s });
    }
  });
  if (dims.length === 0) dims.push({ n: 1, s: 1 });
  const r = dims.length;
  const meta = new Int32Array(2 + 2 * r);
  meta[0] = r;
  dims.forEach((dim, i) => {
    meta[1 + i] = dim.n;
    meta[1 + r + i] = dim.s;
  });
  meta[1 + 2 * r] = offset;
  return meta;
}

/** Sizes beyond int32 (the addon's meta) go to the stock kernel. */
const fitsInt32 = (size: number): boolean => size < 2 ** 31;

export function transposeKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { perm } = args.attrs as unknown as { perm: number[] };
    const size = tf.util.sizeFromShape(x.shape);
    if (!fourBytes(x.dtype) || perm.length !== x.shape.length || perm.length > 8 || !fitsInt32(size))
      return fallback(args);
    const inStrides = stridesOf(x.shape);
    const outShape = perm.map((p) => x.shape[p] as number);
    const meta = stridedMeta(
      outShape,
      perm.map((p) => inStrides[p] as number),
      0,
    );
    if ((meta[0] as number) > 8) return fallback(args);
    const backend = asWasm(args.backend);
    if (size > 0 && meta[0] === 1 && meta[2] === 1) {
      // the permutation moves only size-1 axes: same data, new shape
      return { ...share(args.backend, x), shape: outShape };
    }
    return withOutput(
      backend,
      outShape,
      (out) => {
        if (size > 0) addon.stridedCopy(heap4(backend, x), heap4(backend, out), meta);
      },
      x.dtype,
    );
  };
}

export function sliceKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    if (!fourBytes(x.dtype) || x.shape.length === 0 || x.shape.length > 8) return fallback(args);
    if (!fitsInt32(tf.util.sizeFromShape(x.shape))) return fallback(args);
    const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const strides = stridesOf(x.shape);
    const offset = begin_.reduce((acc, b, d) => acc + b * (strides[d] as number), 0);
    const meta = stridedMeta(size_, strides, offset);
    const backend = asWasm(args.backend);
    return withOutput(
      backend,
      size_,
      (out) => {
        if (tf.util.sizeFromShape(size_) > 0) addon.stridedCopy(heap4(backend, x), heap4(backend, out), meta);
      },
      x.dtype,
    );
  };
}

/** Tile (and tf.broadcastTo, which tiles): each axis d becomes (reps[d], n[d]) with strides (0, stride[d]). */
export function tileKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { reps } = args.attrs as unknown as { reps: number[] };
    if (!fourBytes(x.dtype) || reps.length !== x.shape.length || x.shape.length === 0) return fallback(args);
    const outShape = x.shape.map((n, d) => n * (reps[d] as number));
    if (!fitsInt32(tf.util.sizeFromShape(outShape))) return fallback(args);
    const strides = stridesOf(x.shape);
    const meta = stridedMeta(
      x.shape.flatMap((n, d) => [reps[d] as number, n]),
      strides.flatMap((s) => [0, s]),
      0,
    );
    if ((meta[0] as number) > 8) return fallback(args);
    const backend = asWasm(args.backend);
    return withOutput(
      backend,
      outShape,
      (out) => {
        if (tf.util.sizeFromShape(outShape) > 0)
          addon.stridedCopy(heap4(backend, x), heap4(backend, out), meta);
      },
      x.dtype,
    );
  };
}

/** GatherV2 with batchDims 0 (embedding lookups, picking log-probs); other cases fall back. */
export function gatherKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if (!fourBytes(x.dtype) || indices.dtype !== 'int32' || (batchDims ?? 0) !== 0 || x.shape.length === 0)
      return fallback(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const outShape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const dim = x.shape[ax] as number;
    const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    if (!fitsInt32(tf.util.sizeFromShape(x.shape)) || !fitsInt32(tf.util.sizeFromShape(outShape)))
      return fallback(args);
    const backend = asWasm(args.backend);
    let ok = true;
    const out = withOutput(
      backend,
      outShape,
      (o) => {
        ok = addon.gather(
          heap4(backend, x),
          backend.typedArrayFromHeap(indices) as Int32Array,
          heap4(backend, o),
          outer,
          dim,
          inner,
        );
      },
      x.dtype,
    );
    if (ok) return out;
    backend.disposeData(out.dataId, true);
    return fallback(args); // an index out of range: the stock kernel reports it
  };
}

/** UnsortedSegmentSum (the gradient of a gather along axis 0): float32 values, int32 ids. */
export function segmentSumKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const { numSegments } = args.attrs as unknown as { numSegments: number };
    const nIds = tf.util.sizeFromShape(segmentIds.shape);
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32' || nIds === 0) return fallback(args);
    const inner = tf.util.sizeFromShape(x.shape) / nIds;
    const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
    const backend = asWasm(args.backend);
    return withOutput(backend, outShape, (out) => {
      if (numSegments * inner === 0) return;
      addon.segmentSum(
        backend.typedArrayFromHeap(x) as Float32Array,
        backend.typedArrayFromHeap(segmentIds) as Int32Array,
        backend.typedArrayFromHeap(out) as Float32Array,
        inner,
        numSegments,
      );
    });
  };
}
