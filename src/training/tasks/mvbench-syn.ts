import { Rng } from '../../util/random.js';
import { CHOICE_LETTERS } from '../metrics.js';
import { BACKGROUND, COLOR_NAMES, COLORS, hex, renderSvg, SHAPES, shapeSvg } from './render.js';
import type { Task } from './types.js';

export interface MvbenchOptions {
  width: number;
  height: number;
  frames: number;
  /** Side of the target and of each decoy, in pixels. */
  targetSize: number;
  distractors: number;
}

/**
 * Targets of 40 px are about 3.5 px in the video input (16 frames share two images' budget: a
 * 1280x960 frame comes in at 112x84) and about 12 px in the frame select_frames returns (the full
 * image budget), near the 14 px a default `vstar-syn` square has at input resolution.
 */
export const MVBENCH_DEFAULTS: MvbenchOptions = { width: 1280, height: 960, frames: 16, targetSize: 40, distractors: 40 };

/**
 * MVBench-like: a 16-frame clip of a cluttered scene; for two consecutive frames a tight 2x2
 * cluster of small coloured shapes appears (the target among three decoys of the other choice
 * colours), and the question asks the target's colour (multiple choice). At the per-frame
 * resolution of the video input the cluster is a blur of colours; a frame picked with
 * select_frames comes back at the full image budget, where the target is separable. Two frames,
 * not one: two video frames share a temporal patch, and an event that lasts a single frame would
 * ask the model to tell the halves of one patch apart.
 */
export async function mvbenchTask(seed: number, opts: MvbenchOptions = MVBENCH_DEFAULTS): Promise<Task> {
  const rng = new Rng(seed * 6700417 + 13);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const { width: w, height: h, targetSize: s } = opts;
  const scene: { shape: (typeof SHAPES)[number]; x: number; y: number; size: number; gray: number; dx: number; dy: number }[] = [];
  for (let i = 0; i < opts.distractors; i++) {
    const size = 30 + rng.int(90);
    scene.push({ shape: pick(SHAPES), x: rng.int(w - size), y: rng.int(h - size), size, gray: 90 + rng.int(120), dx: rng.int(9) - 4, dy: rng.int(9) - 4 });
  }
  const colors = [...COLOR_NAMES].sort(() => rng.next() - 0.5).slice(0, 4);
  const shapes = [...SHAPES].sort(() => rng.next() - 0.5);
  const answerIndex = rng.int(4);
  const answerFrame = 1 + rng.int(opts.frames - 1);
  const margin = 40;
  const cx = margin + rng.int(w - 2 * margin - 2 * s);
  const cy = margin + rng.int(h - 2 * margin - 2 * s);
  // The cluster (a background patch, then the four shapes) is the same in both frames that show it.
  const cell = (k: number): [number, number] => [cx + (k % 2) * (s + 1), cy + Math.floor(k / 2) * (s + 1)];
  const cluster = [`<rect x="${cx - 3}" y="${cy - 3}" width="${2 * s + 7}" height="${2 * s + 7}" fill="${BACKGROUND}"/>`];
  for (let k = 0; k < 4; k++) cluster.push(shapeSvg(shapes[k]!, ...cell(k), s, hex(COLORS[colors[k]!]!)));
  const [ax, ay] = cell(answerIndex);
  const region: [number, number, number, number] = [ax, ay, ax + s, ay + s];
  const frames = [];
  for (let f = 1; f <= opts.frames; f++) {
    // The clutter drifts a few pixels per frame, so frames differ everywhere, not only at the answer.
    const parts = [`<rect width="${w}" height="${h}" fill="${BACKGROUND}"/>`];
    for (const d of scene) parts.push(shapeSvg(d.shape, d.x + d.dx * f, d.y + d.dy * f, d.size, hex([d.gray, d.gray, d.gray - 10])));
    if (f === answerFrame || f === answerFrame + 1) parts.push(...cluster);
    frames.push(await renderSvg(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${parts.join('')}</svg>`));
  }
  return {
    id: `mvbench-syn-${seed}`,
    suite: 'mvbench-syn',
    frames,
    question: `In one frame of the video, a cluster of small coloured shapes appears. What is the colour of the small ${shapes[answerIndex]}?`,
    choices: colors,
    answer: CHOICE_LETTERS[answerIndex]!,
    kind: 'choice',
    metric: 'accuracy',
    region,
    answerFrames: [answerFrame, answerFrame + 1],
  };
}
