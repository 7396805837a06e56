import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ONNX_FILES } from './model-dir.js';
import { readExternalInitializers, readInitializers } from './onnx/read-initializers.js';
import { DATA_TYPE } from './onnx/ir.js';
import { readRange } from './hf/checkpoint-tensors.js';
import { decodeToFloat32 } from './safetensors.js';
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
      const bytes = await readRangeOf(join(dir, 'onnx', t.external.location), t.external.offset, t.external.length);
      weights.set(t.name, { dims: t.dims, data: t.dataType === DATA_TYPE.float16 ? decodeToFloat32(bytes, 'F16') : decodeToFloat32(bytes, 'F32') });
    }
  }
  return weights;
}

async function readRangeOf(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const bytes = await readRange(fh, offset, length);
    if (bytes.length !== length) throw new Error(`${path}: truncated at byte ${offset + bytes.length}`);
    return bytes;
  } finally {
    await fh.close();
  }
}
