/**
 * tf.Tensor ↔ TensorRecord. Saving copies each tensor's values out (float32 → F32, int32 → I32,
 * bool → BOOL). Loading makes float32 tensors from every float dtype (F64 loses precision, F16/BF16
 * widen exactly) and int32 tensors from every integer dtype (I64 values outside int32 are an error).
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';
import { bf16ArrayToF32, f16ArrayToF32, type TensorRecord } from './dtypes.js';

/** Copies each tensor's values into a record. The tensors are not disposed (the caller owns them). */
export async function tensorsToRecords(
  tensors: Record<string, tf.Tensor>,
): Promise<Record<string, TensorRecord>> {
  const out: [string, TensorRecord][] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const shape = [...t.shape];
    // slice(): the backend may hand out its own storage, which must never be shared with a record.
    if (t.dtype === 'float32') {
      out.push([name, { dtype: 'F32', shape, data: ((await t.data()) as Float32Array).slice() }]);
    } else if (t.dtype === 'int32') {
      out.push([name, { dtype: 'I32', shape, data: ((await t.data()) as Int32Array).slice() }]);
    } else if (t.dtype === 'bool') {
      out.push([
        name,
        { dtype: 'BOOL', shape, data: Uint8Array.from((await t.data()) as Uint8Array, (v) => (v ? 1 : 0)) },
      ]);
    } else {
      throw new CheckpointError(
        `tensor '${name}' has dtype ${t.dtype}, which safetensors checkpoints do not hold`,
        {
          location: { field: name },
          hint: 'Cast it to float32 or int32 before saving.',
        },
      );
    }
  }
  return Object.fromEntries(out);
}

type Values =
  | { dtype: 'float32'; data: Float32Array }
  | { dtype: 'int32'; data: Int32Array }
  | { dtype: 'bool'; data: Uint8Array };

/** Values for tf.tensor, always a fresh array: tfjs may adopt the array it is given as its storage. */
function toValues(name: string, record: TensorRecord, file: string | undefined): Values {
  const { dtype, data } = record;
  switch (dtype) {
    case 'F32':
      return { dtype: 'float32', data: (data as Float32Array).slice() };
    case 'F64':
      return { dtype: 'float32', data: Float32Array.from(data as Float64Array) };
    case 'F16':
      return { dtype: 'float32', data: f16ArrayToF32(data as Uint16Array) };
    case 'BF16':
      return { dtype: 'float32', data: bf16ArrayToF32(data as Uint16Array) };
    case 'I32':
      return { dtype: 'int32', data: (data as Int32Array).slice() };
    case 'I16':
    case 'I8':
    case 'U8':
      return { dtype: 'int32', data: Int32Array.from(data as Int16Array | Int8Array | Uint8Array) };
    case 'BOOL':
      return { dtype: 'bool', data: (data as Uint8Array).slice() };
    case 'I64': {
      const wide = data as BigInt64Array;
      const narrow = new Int32Array(wide.length);
      for (let i = 0; i < wide.length; i++) {
        const v = wide[i];
        if (v < -2147483648n || v > 2147483647n) {
          throw new CheckpointError(
            `tensor '${name}' is I64 and element ${i} is ${v}, outside the int32 range`,
            {
              location: { file, field: name },
              hint: 'TensorFlow.js holds integers as int32; store this tensor as F32 or keep its values in int32 range.',
            },
          );
        }
        narrow[i] = Number(v);
      }
      return { dtype: 'int32', data: narrow };
    }
    default:
      throw new CheckpointError(`tensor '${name}' has unknown dtype ${String(dtype)}`, {
        location: { file, field: name },
        hint: 'Use a dtype listed in SafetensorsDType.',
      });
  }
}

/**
 * Makes a tensor per record. All values are converted (and range-checked) before the first tensor is
 * made, so an error leaks nothing; the caller owns and disposes the returned tensors.
 */
export function recordsToTensors(
  records: Record<string, TensorRecord>,
  file?: string,
): Record<string, tf.Tensor> {
  const values = Object.entries(records).map(([name, record]) => {
    const count = record.shape.reduce((a, b) => a * b, 1);
    if (record.data.length !== count) {
      throw new CheckpointError(
        `tensor '${name}' needs ${count} elements (${record.dtype} [${record.shape.join(', ')}]) but its data has ${record.data.length}`,
        { location: { file, field: name }, hint: 'Make the shape and the data agree.' },
      );
    }
    return [name, record.shape, toValues(name, record, file)] as const;
  });
  return Object.fromEntries(values.map(([name, shape, v]) => [name, tf.tensor(v.data, [...shape], v.dtype)]));
}
