import { existsSync } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { decodeToFloat32, type StoredDtype } from '../safetensors.js';

/**
 * The tensors of a Hugging Face checkpoint: one `model.safetensors`, or shards listed in
 * `model.safetensors.index.json`. Only headers are read up front; each tensor is read later by its
 * byte range, so a 4 GB shard never has to fit in one buffer.
 */

export interface StoredTensor {
  name: string;
  dtype: StoredDtype;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`, and its length. */
  offset: number;
  length: number;
}

export class CheckpointError extends Error {}

const BYTES: Record<StoredDtype, number> = { BF16: 2, F16: 2, F32: 4 };

/** Largest read or write per call: Node's file I/O takes int32 lengths, and tensors pass 2 GiB. */
export const IO_CHUNK = 1 << 30;
const MAX_HEADER = 100 * 1024 * 1024;

/** Reads `length` bytes at `offset`, in chunks Node's int32 lengths allow; fewer bytes only at the end of the file. */
export async function readRange(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(length - done, IO_CHUNK), offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Reads one safetensors file's header and checks every tensor's range against the file's size. */
async function readShardHeader(path: string): Promise<StoredTensor[]> {
  const name = basename(path);
  if (!existsSync(path)) throw new CheckpointError(`${name}: file is missing`);
  const size = (await stat(path)).size;
  const fh = await open(path, 'r');
  try {
    if (size < 8) throw new CheckpointError(`${name}: truncated (${size} bytes, no safetensors header)`);
    const headerLength = Number((await readRange(fh, 0, 8)).readBigUInt64LE(0));
    if (headerLength > MAX_HEADER || 8 + headerLength > size) throw new CheckpointError(`${name}: truncated or not a safetensors file (header of ${headerLength} bytes in a ${size}-byte file)`);
    let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    try {
      header = JSON.parse((await readRange(fh, 8, headerLength)).toString('utf8'));
    } catch {
      throw new CheckpointError(`${name}: the safetensors header is not valid JSON`);
    }
    const base = 8 + headerLength;
    const tensors: StoredTensor[] = [];
    for (const [tensor, t] of Object.entries(header)) {
      if (tensor === '__metadata__') continue;
      if (!Array.isArray(t?.shape) || !Array.isArray(t?.data_offsets) || !(t.data_offsets[0]! >= 0)) {
        throw new CheckpointError(`${name}: ${tensor} has no valid shape or data_offsets in the header`);
      }
      if (!(t.dtype in BYTES)) throw new CheckpointError(`${name}: ${tensor} has dtype ${t.dtype}; BF16, F16 and F32 are supported`);
      const [begin, end] = t.data_offsets;
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (end - begin !== count * BYTES[t.dtype as StoredDtype]) throw new CheckpointError(`${name}: ${tensor} has ${end - begin} bytes for shape [${t.shape}] ${t.dtype}`);
      if (base + end > size) throw new CheckpointError(`${name}: truncated: ${tensor} ends at byte ${base + end}, the file has ${size}`);
      tensors.push({ name: tensor, dtype: t.dtype as StoredDtype, shape: t.shape, file: path, offset: base + begin, length: end - begin });
    }
    return tensors;
  } finally {
    await fh.close();
  }
}

/** True when `dir` holds safetensors weights in the Hub's layout (and so is a snapshot to convert). */
export function hasSafetensors(dir: string): boolean {
  return existsSync(join(dir, 'model.safetensors.index.json')) || existsSync(join(dir, 'model.safetensors'));
}

/** The files that hold a checkpoint's weights, in the order the index names them. */
export async function weightFiles(dir: string): Promise<string[]> {
  const index = join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) {
    if (!existsSync(join(dir, 'model.safetensors'))) throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`);
    return [join(dir, 'model.safetensors')];
  }
  let map: Record<string, string>;
  try {
    map = (JSON.parse(await readFile(index, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
  } catch {
    throw new CheckpointError('model.safetensors.index.json: not valid JSON');
  }
  return [...new Set(Object.values(map))].map((f) => join(dir, f));
}

/** Every tensor of the checkpoint by name. A shard named by the index but absent fails with its file name. */
export async function readCheckpointTensors(dir: string): Promise<Map<string, StoredTensor>> {
  const tensors = new Map<string, StoredTensor>();
  for (const file of await weightFiles(dir)) {
    for (const t of await readShardHeader(file)) tensors.set(t.name, t);
  }
  return tensors;
}

/** Reads one tensor by its byte range, as fp32. */
export async function readTensor(t: StoredTensor): Promise<Float32Array> {
  const fh = await open(t.file, 'r');
  try {
    const bytes = await readRange(fh, t.offset, t.length);
    if (bytes.length !== t.length) throw new CheckpointError(`${basename(t.file)}: truncated while reading ${t.name}`);
    return decodeToFloat32(bytes, t.dtype);
  } finally {
    await fh.close();
  }
}
