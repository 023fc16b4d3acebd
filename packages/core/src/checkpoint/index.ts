export {
  type SafetensorsDType,
  type DTypeArrays,
  type TensorData,
  type TensorRecord,
  SAFETENSORS_DTYPES,
  isSafetensorsDType,
  dtypeBytes,
  f16ToF32,
  f32ToF16,
  bf16ToF32,
  f32ToBf16,
  f16ArrayToF32,
  f32ArrayToF16,
  bf16ArrayToF32,
  f32ArrayToBf16,
} from './dtypes.js';
export {
  type SafetensorsContents,
  MAX_HEADER_BYTES,
  encodeSafetensors,
  decodeSafetensors,
  writeSafetensors,
  readSafetensors,
} from './safetensors.js';
export { sha256Hex, writeFileAtomic, writeJsonAtomic } from './files.js';
export { tensorsToRecords, recordsToTensors } from './tensor-records.js';
export {
  type CheckpointStoreOptions,
  type CheckpointFileEntry,
  type CheckpointManifest,
  type LoadedCheckpoint,
  CHECKPOINT_MANIFEST,
  checkpointFolderName,
  CheckpointStore,
} from './checkpoint-store.js';
