import type { ProcessorConfig } from '../config.js';
import type { RgbImage } from '../../tools/image.js';
import { runResize } from './preprocess-pool.js';
import { checkFrames, patchGrid, type ResizedFrames } from './patchify.js';

/** Python's round() (half to even): transformers' smart_resize and PIL's crop of float boxes use it. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Qwen2-VL smart_resize: returns [width, height], multiples of factor, within the pixel budget.
 * `python` follows transformers (Python's round, no upscaling of sides below factor first);
 * otherwise transformers.js's variant, which the project's own models were trained with.
 */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number, python = false): [number, number] {
  const round = python ? roundHalfEven : Math.round;
  if (!python && (height < factor || width < factor)) {
    const scale = Math.max(factor / height, factor / width);
    height = Math.round(height * scale);
    width = Math.round(width * scale);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new Error(`absolute aspect ratio must be smaller than 200, got ${Math.max(height, width) / Math.min(height, width)}`);
  }
  let hBar = round(height / factor) * factor;
  let wBar = round(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return [wBar, hBar];
}

/** Model-ready visual input: patches in merge order and their [t, h, w] grid (in patches). */
/**
 * An image or video as the vision encoder will see it: its frames resized (bytes, an eighth of the
 * pixel values' size), the patch grid and its place in the text. The frames are patchified into a
 * reused buffer when they are encoded, off the model's runtime thread (runPatchify).
 */
export interface VisualInput extends ResizedFrames {
  grid: [number, number, number];
  /** Tokens this input occupies in the text sequence: t*h*w / merge². */
  numTokens: number;
}

export function resizeTarget(img: { width: number; height: number }, p: ProcessorConfig, budget?: { min: number; max: number }): [number, number] {
  return smartResize(img.height, img.width, p.patch_size * p.merge_size, budget?.min ?? p.min_pixels, budget?.max ?? p.max_pixels, p.resize_backend === 'pil');
}

/**
 * Resizes frames exactly as transformers.js's Qwen2VLImageProcessor (transformers' for 'pil'
 * checkpoints); rescaling, normalising and patchifying follow where the frames are encoded
 * (patchifyInto). The resize runs in a preprocessing worker unless it is cheaper here (runResize).
 */
export async function preprocessFrames(frames: RgbImage[], p: ProcessorConfig, budget?: { min: number; max: number }): Promise<VisualInput> {
  const [width, height] = resizeTarget(frames[0]!, p, budget);
  const resized = await runResize({ frames, width, height, processor: p });
  const input = { frames: resized, width, height };
  checkFrames(input, true);
  const grid = patchGrid(resized.length, width, height, p);
  return { ...input, grid, numTokens: (grid[0] * grid[1] * grid[2]) / (p.merge_size * p.merge_size) };
}

/**
 * The preprocessed inputs of prompt images, by image object and processor: the n samples or
 * rollouts of one prompt, and a conversation whose images come back every turn as the same objects,
 * resize each image once (vLLM keeps processed multimodal inputs for the same reason).
 */
const preprocessedImages = new WeakMap<RgbImage, WeakMap<ProcessorConfig, Promise<VisualInput>>>();

/** preprocessFrames of one image, done once per image object and processor (images are not modified once decoded). */
export function preprocessImage(image: RgbImage, p: ProcessorConfig): Promise<VisualInput> {
  let byProcessor = preprocessedImages.get(image);
  if (!byProcessor) preprocessedImages.set(image, (byProcessor = new WeakMap()));
  let input = byProcessor.get(p);
  if (!input) {
    byProcessor.set(p, (input = preprocessFrames([image], p)));
    input.catch(() => byProcessor.delete(p));
  }
  return input;
}
