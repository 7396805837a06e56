import { readFile } from 'node:fs/promises';
import { writeSynced } from '../util/files.js';
import type { Weights } from './weights.js';

/**
 * Weights in the safetensors layout (8-byte little-endian header length, a JSON header of
 * `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data), so Python tools read
 * them as they are. Written as BF16, F16 or F32; always read back as fp32. Written by hand: the format is
 * ~30 lines, and the npm packages for it pull in a tensor library.
 */

/** The tensor dtypes read and written here (quantized checkpoints are refused by name elsewhere). */
export type StoredDtype = 'BF16' | 'F16' | 'F32';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half from float, round to nearest even (overflow to infinity, tiny values to subnormals or zero). */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && (half & 1)) ? 1 : 0));
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** bfloat16 (the upper half of an fp32) from float, round to nearest even. */
export function toBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000) return (x >>> 16) | (x & 0xffff ? 0x40 : 0); // inf, NaN stays NaN
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/**
 * fp32 values as IEEE halves (the stored bits), round to nearest even. A plain loop:
 * `Uint16Array.from(data, fn)` collects the mapped values in a JS list first, which a 300M-element
 * embedding does not fit in the heap.
 */
export function toFloat16(data: Float32Array): Uint16Array {
  return encodeEach(data, toHalf);
}

function encodeEach(data: Float32Array, encode: (v: number) => number): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = encode(data[i]!);
  return out;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export async function writeSafetensors(path: string, weights: Weights, dtype: StoredDtype = 'F32'): Promise<void> {
  const names = [...weights.keys()].sort();
  const bytesPer = dtype === 'F32' ? 4 : 2;
  const header: Record<string, { dtype: StoredDtype; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const name of names) {
    const { dims, data } = weights.get(name)!;
    header[name] = { dtype, shape: dims, data_offsets: [offset, offset + data.length * bytesPer] };
    offset += data.length * bytesPer;
  }
  // The spec pads the header with spaces to a multiple of 8 so the data is aligned.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json);
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const { data } = weights.get(name)!;
    // Typed-array views are host-endian; every platform Node ships for is little-endian, as the format.
    const encoded = dtype === 'F16' ? toFloat16(data) : dtype === 'BF16' ? encodeEach(data, toBfloat16) : Float32Array.from(data);
    Buffer.from(encoded.buffer).copy(out, at);
    at += data.length * bytesPer;
  }
  await writeSynced(path, out);
}

export async function readSafetensors(path: string): Promise<Weights> {
  const buf = await readFile(path);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLength;
  const weights: Weights = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = t.data_offsets;
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.dtype !== 'BF16' && t.dtype !== 'F16' && t.dtype !== 'F32') throw new Error(`${path}: ${name} has dtype ${t.dtype} (BF16, F16 and F32 are read)`);
    if (end - begin !== size * (t.dtype === 'F32' ? 4 : 2)) throw new Error(`${path}: ${name} has ${end - begin} bytes for shape [${t.shape}]`);
    const data = decodeToFloat32(buf.subarray(base + begin, base + end), t.dtype);
    weights.set(name, { dims: t.shape, data });
  }
  return weights;
}

/** Decodes stored little-endian bytes to fp32 (BF16 is the upper half of an fp32, so exact). */
export function decodeToFloat32(bytes: Uint8Array, dtype: StoredDtype): Float32Array {
  const n = bytes.byteLength / (dtype === 'F32' ? 4 : 2);
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const halves = new Uint16Array(n);
  new Uint8Array(halves.buffer).set(bytes);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = halves[i]! << 16;
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = fromHalf(halves[i]!);
  return out;
}

