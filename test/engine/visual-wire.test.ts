import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProcessorConfig } from '../../src/model/config.js';
import type { VisualInput } from '../../src/model/processor/image-processor.js';
import { patchGrid, pixelValues } from '../../src/model/processor/patchify.js';
import type { RgbImage } from '../../src/tools/image.js';
import { packedBytes, packVisuals, unpackVisuals } from '../../src/engine/visual-wire.js';

const P: ProcessorConfig = {
  min_pixels: 3136, max_pixels: 1e6, patch_size: 14, merge_size: 2, temporal_patch_size: 2,
  image_mean: [0.48, 0.45, 0.4], image_std: [0.26, 0.26, 0.27],
};

const frame = (width: number, height: number, seed: number): RgbImage =>
  ({ data: Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 31 + seed * 101) % 256), width, height });

function input(frames: RgbImage[]): VisualInput {
  const { width, height } = frames[0]!;
  const grid = patchGrid(frames.length, width, height, P);
  return { frames, width, height, grid, numTokens: (grid[0] * grid[1] * grid[2]) / 4 };
}

test('packed inputs unpack to the same pixel values; a frame shared by two inputs travels once', () => {
  const shared = frame(56, 28, 1);
  const inputs = [input([shared]), input([frame(28, 84, 2), frame(28, 84, 3), frame(28, 84, 4)]), input([shared])];
  const bytes = packedBytes(inputs);
  assert.equal(bytes, shared.data.length + 3 * 28 * 84 * 3);
  const buffer = new ArrayBuffer(bytes + 100); // a reused buffer is larger than the call needs
  const wire = packVisuals(inputs, buffer);
  assert.equal(wire.bytes.length, bytes);
  assert.deepEqual([...wire.grid], inputs.flatMap((x) => x.grid.map(BigInt)));
  const unpacked = unpackVisuals(wire);
  unpacked.forEach((u, i) => assert.deepEqual(pixelValues(u, P), pixelValues(inputs[i]!, P), `input ${i}`));
  assert.equal(unpacked[0]!.frames[0], unpacked[2]!.frames[0], 'the shared frame is one view');
});
