export {
  CHECKPOINT_MANIFEST,
  type CheckpointFileEntry,
  type CheckpointManifest,
  CheckpointStore,
  type CheckpointStoreOptions,
  checkpointFolderName,
  type LoadedCheckpoint,
} from './checkpoint-store.js';
export {
  bf16ArrayToF32,
  bf16ToF32,
  type DTypeArrays,
  dtypeBytes,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
  isSafetensorsDType,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  type TensorData,
  type TensorRecord,
} from './dtypes.js';
export { sha256Hex, writeFileAtomic, writeJsonAtomic } from './files.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  readSafetensors,
  type SafetensorsContents,
  writeSafetensors,
} from './safetensors.js';
export { recordsToTensors, tensorsToRecords } from './tensor-records.js';
