import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ONNX_FILES } from './model-dir.js';
import { readInitializers } from './onnx/read-initializers.js';
import type { Weights } from './weights.js';

/** The named fp32 weights of a model directory (all graphs; the same name in two graphs is the same tensor). */
export async function loadWeights(dir: string): Promise<Weights> {
  const weights: Weights = new Map();
  for (const file of [ONNX_FILES.embed, ONNX_FILES.decoder, ONNX_FILES.vision]) {
    for (const [name, t] of readInitializers(await readFile(join(dir, file)))) {
      // Graph constants are initializers too; parameters are the dotted module paths.
      if (name.includes('.') && !weights.has(name)) weights.set(name, t);
    }
  }
  return weights;
}
