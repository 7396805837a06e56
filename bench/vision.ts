/**
 * The vision tower per image size: preprocessing and encoding time and the process's peak memory,
 * each size in a fresh process (so peaks do not mix), up to the Pixel-Reasoner evaluation budget
 * (MAX_PIXELS = 5120·28·28, about 20,000 patches). Also prints what a dense patches x patches
 * attention would have needed for the same image (heads x N² fp32 scores in one block).
 *
 *   node --import tsx bench/vision.ts --model DIR [--sizes 448x448,1024x768,2304x1736] [--max-pixels N] [--json]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OnnxModel } from '../src/engine/onnx-model.js';
import { loadModelFiles } from '../src/model/model-dir.js';
import { preprocessFrames } from '../src/model/processor/image-processor.js';

const { values } = parseArgs({
  options: { model: { type: 'string' }, sizes: { type: 'string' }, 'max-pixels': { type: 'string' }, json: { type: 'boolean' }, child: { type: 'string' } },
});
if (!values.model) throw new Error('--model DIR is required');
const MAX_PIXELS = Number(values['max-pixels'] ?? 5120 * 28 * 28);

/** Peak resident memory of this process so far (VmHWM), MiB. */
function peakMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

async function child(size: string): Promise<void> {
  const [w, h] = size.split('x').map(Number) as [number, number];
  const files = await loadModelFiles(values.model!);
  const runner = await OnnxModel.load(files);
  const afterLoad = peakMiB();
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const processor = { ...files.config.processor, max_pixels: MAX_PIXELS };
  let t = performance.now();
  const input = await preprocessFrames([{ data, width: w, height: h }], processor);
  const preprocessS = (performance.now() - t) / 1000;
  t = performance.now();
  await runner.encodeVisual([input]);
  const encodeS = (performance.now() - t) / 1000;
  const patches = input.grid[1] * input.grid[2];
  const heads = files.config.vision.num_heads;
  console.log(JSON.stringify({
    size, resized: `${input.width}x${input.height}`, patches, tokens: input.numTokens, preprocess_s: preprocessS, encode_s: encodeS,
    peak_mib: peakMiB(), peak_after_load_mib: afterLoad, dense_scores_mib: Math.round((heads * patches * patches * 4) / 2 ** 20),
  }));
  await runner.release();
}

if (values.child) await child(values.child);
else {
  const rows = (values.sizes ?? '448x448,1024x768,1600x1200,2304x1736').split(',').map((size) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--model', values.model!, '--max-pixels', String(MAX_PIXELS), '--child', size], { encoding: 'utf8' });
    const row = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number | string>;
    process.stderr.write(`${row.size} -> ${row.resized} (${row.patches} patches, ${row.tokens} tokens): preprocess ${Number(row.preprocess_s).toFixed(2)} s, `
      + `encode ${Number(row.encode_s).toFixed(1)} s, peak ${row.peak_mib} MiB (${row.peak_after_load_mib} after load); dense attention scores would be ${row.dense_scores_mib} MiB per block\n`);
    return row;
  });
  if (values.json) console.log(JSON.stringify({ model: values.model, max_pixels: MAX_PIXELS, rows }));
}
