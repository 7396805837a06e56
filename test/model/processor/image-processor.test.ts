import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AutoProcessor, RawImage, env } from '@huggingface/transformers';
import { loadModelFiles } from '../../../src/model/model-dir.js';
import { cropRegion, decodeImage } from '../../../src/tools/image.js';
import { preprocessFrames, preprocessImage, smartResize } from '../../../src/model/processor/image-processor.js';
import { pixelValues } from '../../../src/model/processor/patchify.js';
import { testImagePng, testModel } from '../../helpers.js';

env.allowRemoteModels = false;

test('pixel_values and image_grid_thw equal transformers.js for 5 image sizes (max abs diff <= 1e-5)', async () => {
  const dir = await testModel('tiny', 1);
  const { config } = await loadModelFiles(dir);
  const processor = await AutoProcessor.from_pretrained(dir);
  for (const [w, h] of [[640, 480], [1500, 1000], [100, 300], [33, 57], [2000, 200]] as const) {
    const png = await testImagePng(w, h, w);
    const input = await preprocessFrames([await decodeImage(png, { maxPixels: 1e8 })], config.processor);
    const ours = { grid: input.grid, pixelValues: pixelValues(input, config.processor) };
    const theirs = await processor.image_processor!(await RawImage.fromBlob(new Blob([png])));
    const tv = theirs.pixel_values.data as Float32Array;
    assert.deepEqual((theirs.image_grid_thw.tolist() as bigint[][])[0]!.map(Number), ours.grid, `grid ${w}x${h}`);
    assert.equal(ours.pixelValues.length, tv.length);
    let maxDiff = 0;
    for (let i = 0; i < tv.length; i++) maxDiff = Math.max(maxDiff, Math.abs(tv[i]! - ours.pixelValues[i]!));
    assert.ok(maxDiff <= 1e-5, `${w}x${h}: max abs diff ${maxDiff}`);
  }
});

test('smart_resize keeps multiples of 28 within the pixel budget', () => {
  // beta = sqrt(480*640/100352) = 1.7496: floor(480/beta/28)*28 = 252, floor(640/beta/28)*28 = 364
  assert.deepEqual(smartResize(480, 640, 28, 3136, 100352), [364, 252]);
  assert.deepEqual(smartResize(10, 10, 28, 3136, 100352), [56, 56]);
  const [w, h] = smartResize(1000, 1500, 28, 3136, 100352);
  assert.ok(w % 28 === 0 && h % 28 === 0 && w * h <= 100352);
  assert.throws(() => smartResize(10, 3000, 28, 3136, 100352), /aspect ratio/);
});

test('decodeImage composites alpha on white and applies the pixel limit before decoding', async () => {
  const sharp = (await import('sharp')).default;
  const transparent = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  const img = await decodeImage(transparent, { maxPixels: 100 });
  assert.deepEqual([...img.data.slice(0, 3)], [255, 255, 255]);
  await assert.rejects(decodeImage(transparent, { maxPixels: 15 }), /over the limit/);
  await assert.rejects(decodeImage(Buffer.from('not an image'), { maxPixels: 100 }), /could not decode/);
});

test('a prompt image is preprocessed once per processor: the same image object again reuses its input, which equals a fresh one', async () => {
  const { config } = await loadModelFiles(await testModel('tiny', 1));
  const image = await decodeImage(await testImagePng(900, 700, 3), { maxPixels: 1e8 });
  const first = await preprocessImage(image, config.processor);
  assert.equal(await preprocessImage(image, config.processor), first, 'the preprocessed input is reused');
  const fresh = await preprocessFrames([{ ...image, data: Buffer.from(image.data) }], config.processor);
  assert.notEqual(fresh.frames[0], first.frames[0]);
  assert.deepEqual({ ...fresh, frames: [] }, { ...first, frames: [] });
  assert.deepEqual(fresh.frames[0]!.data, first.frames[0]!.data);
  // Another processor (a model with other pixel limits) preprocesses again.
  const other = await preprocessImage(image, { ...config.processor, max_pixels: 200 * 200 });
  assert.ok(other.width * other.height < first.width * first.height);
});

test('a crop the model only looks at is resized from its source in place: its pixels are never copied out', async () => {
  const { config } = await loadModelFiles(await testModel('tiny', 1));
  const image = await decodeImage(await testImagePng(900, 700, 5), { maxPixels: 1e8 });
  const crop = cropRegion(image, 120, 80, 620, 430);
  const copy = { data: crop.data.slice(), width: crop.width, height: crop.height };
  const lazy = cropRegion(image, 120, 80, 620, 430);
  let copiedOut = false;
  Object.defineProperty(lazy, 'data', { get: () => ((copiedOut = true), copy.data) });
  const input = await preprocessFrames([lazy], config.processor);
  assert.equal(copiedOut, false, 'the crop\'s data was read');
  assert.deepEqual(input.frames[0]!.data, (await preprocessFrames([copy], config.processor)).frames[0]!.data);
});
