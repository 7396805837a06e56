import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ONNX_FILES } from './model-dir.js';
import { readExternalInitializers, readInitializers } from './onnx/read-initializers.js';
import { DATA_TYPE } from './onnx/ir.js';
import { decodeToFloat32, IO_CHUNK } from './hf/checkpoint-tensors.js';
import type { Weights } from './weights.js';

/** The named fp32 weights of a model directory (all graphs; the same name in two graphs is the same tensor). */
export async function loadWeights(dir: string): Promise<Weights> {
  const weights: Weights = new Map();
  for (const file of [ONNX_FILES.embed, ONNX_FILES.decoder, ONNX_FILES.vision]) {
    const model = await readFile(join(dir, file));
    for (const [name, t] of readInitializers(model)) {
      // Graph constants are initializers too; parameters are the dotted module paths.
      if (name.includes('.') && !weights.has(name)) weights.set(name, t);
    }
    // Converted checkpoints keep their weights in an external-data file beside the graphs.
    for (const t of readExternalInitializers(model)) {
      if (weights.has(t.name)) continue;
      if (t.dataType === DATA_TYPE.uint8) {
        throw new Error(`${dir}: ${t.name} is quantized; training needs fp32 or fp16 weights (convert the snapshot with --dtype fp32)`);
      }
      const bytes = await readRange(join(dir, 'onnx', t.external.location), t.external.offset, t.external.length);
      weights.set(t.name, { dims: t.dims, data: t.dataType === DATA_TYPE.float16 ? decodeToFloat32(bytes, 'F16') : decodeToFloat32(bytes, 'F32') });
    }
  }
  return weights;
}

async function readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, Math.min(length - done, IO_CHUNK), offset + done);
      if (bytesRead === 0) throw new Error(`${path}: truncated at byte ${offset + done}`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
