import { Rng } from '../../util/random.js';
import { CHOICE_LETTERS } from '../metrics.js';
import { framedSquares, MAX_DECOYS } from './framed-squares.js';
import { BACKGROUND, hex, renderScene, SHAPES, shapeSvg } from './render.js';
import { IMAGE_SIDE_RANGE, type OptionRanges, type Task } from './types.js';

export interface MvbenchOptions {
  width: number;
  height: number;
  frames: number;
  /** Side of each coloured square, in pixels. */
  targetSize: number;
  /** Squares in the other choice colours (0-3), on screen in every frame. */
  decoys: number;
  /** Large gray shapes drifting over the scene, gone in the two key frames. */
  distractors: number;
}

/** The key frames' background: the lights dim, which changes every part of the picture. */
const DIMMED = '#8c8b86';

/**
 * Squares of 48 px (V*'s) are about 4 px in the video input (16 frames share two images' budget:
 * a 1280x960 frame comes in at 112x84) and about 14 px in the frame select_frames returns (the
 * full image budget), the size a `vstar-syn` square has at input resolution.
 */
export const MVBENCH_DEFAULTS: MvbenchOptions = { width: 1280, height: 960, frames: 16, targetSize: 48, decoys: 3, distractors: 20 };

export const MVBENCH_RANGES: OptionRanges<MvbenchOptions> = { width: IMAGE_SIDE_RANGE, height: IMAGE_SIDE_RANGE, frames: [2, 64], targetSize: [1, 512], decoys: [0, MAX_DECOYS], distractors: [0, 500] };

/**
 * MVBench-like: a 16-frame clip of four coloured squares among drifting gray clutter. For two
 * consecutive frames the lights dim, the clutter clears and a bold black frame surrounds one
 * square; the question asks that square's colour (multiple choice). Finding the moment is easy at
 * any resolution (the background, so every video token, changes: when only the clutter cleared,
 * the key frames' tokens moved 3% and a model did not learn to find them), so the temporal part of
 * the task is naming the right frame. What the frame shows is V*'s binding problem: at the
 * video's per-frame resolution the squares are blobs of a few pixels, while a frame picked with
 * select_frames comes back at the full image budget. Two frames, not one: two video frames share
 * a temporal patch, and an event that lasts a single frame would ask the model to tell the halves
 * of one patch apart.
 */
export async function mvbenchTask(seed: number, opts: MvbenchOptions = MVBENCH_DEFAULTS): Promise<Task> {
  const rng = new Rng(seed * 6700417 + 13);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const { width: w, height: h, targetSize: s } = opts;
  const clutter: { shape: (typeof SHAPES)[number]; x: number; y: number; size: number; gray: number; dx: number; dy: number }[] = [];
  for (let i = 0; i < opts.distractors; i++) {
    const size = 30 + rng.int(90);
    clutter.push({ shape: pick(SHAPES), x: rng.int(w - size), y: rng.int(h - size), size, gray: 90 + rng.int(120), dx: rng.int(9) - 4, dy: rng.int(9) - 4 });
  }
  const scene = framedSquares(rng, w, h, s, opts.decoys, DIMMED);
  const answerFrame = 1 + rng.int(opts.frames - 1);
  // The two key frames are the same picture: rendered once.
  const keyFrame = await renderScene(w, h, [`<rect width="${w}" height="${h}" fill="${DIMMED}"/>`, ...scene.frameSvg, ...scene.squaresSvg]);
  const frames = [];
  for (let f = 1; f <= opts.frames; f++) {
    if (f === answerFrame || f === answerFrame + 1) {
      frames.push(keyFrame);
      continue;
    }
    const parts = [`<rect width="${w}" height="${h}" fill="${BACKGROUND}"/>`];
    // The clutter drifts a few pixels per frame, so the other frames differ from each other too.
    for (const d of clutter) parts.push(shapeSvg(d.shape, d.x + d.dx * f, d.y + d.dy * f, d.size, hex([d.gray, d.gray, d.gray - 10])));
    frames.push(await renderScene(w, h, [...parts, ...scene.squaresSvg]));
  }
  return {
    id: `mvbench-syn-${seed}`,
    suite: 'mvbench-syn',
    frames,
    question: 'At one moment of the video the lights dim, the clutter clears and a black frame appears around one square. What is the colour of the square inside the black frame?',
    choices: scene.colors,
    answer: CHOICE_LETTERS[scene.answerIndex]!,
    kind: 'choice',
    metric: 'accuracy',
    region: scene.region,
    answerFrames: [answerFrame, answerFrame + 1],
  };
}
