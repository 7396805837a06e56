import { Rng } from '../../util/random.js';
import { COLOR_NAMES, COLORS, hex, renderSvg, SHAPES, shapeSvg } from './render.js';
import type { Task } from './types.js';

export interface VstarOptions {
  width: number;
  height: number;
  /** Side of the target and of each decoy, in pixels. */
  targetSize: number;
  /** Large gray distractor shapes scattered over the image. */
  distractors: number;
}

export const VSTAR_DEFAULTS: VstarOptions = { width: 1280, height: 960, targetSize: 4, distractors: 60 };

/**
 * V*-like: the colour of one small shape in a large cluttered image (multiple choice). The target
 * sits in a tight 2x2 cluster with three decoys of the other choice colours and other shapes, so at
 * the model's input resolution the cluster blurs into a mix and only a zoom separates them.
 */
export async function vstarTask(seed: number, opts: VstarOptions = VSTAR_DEFAULTS): Promise<Task> {
  const rng = new Rng(seed * 7919 + 1);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const { width: w, height: h, targetSize: s } = opts;
  const parts: string[] = [`<rect width="${w}" height="${h}" fill="#f0efe8"/>`];
  for (let i = 0; i < opts.distractors; i++) {
    const size = 30 + rng.int(90);
    const g = 90 + rng.int(120);
    parts.push(shapeSvg(pick(SHAPES), rng.int(w - size), rng.int(h - size), size, hex([g, g, g - 10])));
  }
  const colors = [...COLOR_NAMES].sort(() => rng.next() - 0.5).slice(0, 4);
  const shapes = [...SHAPES].sort(() => rng.next() - 0.5);
  const answerIndex = rng.int(4);
  // 2x2 cluster with a 1 px gap; cell k holds shape k in colour k; the target is cell answerIndex.
  const margin = 40;
  const cx = margin + rng.int(w - 2 * margin - 2 * s);
  const cy = margin + rng.int(h - 2 * margin - 2 * s);
  parts.push(`<rect x="${cx - 3}" y="${cy - 3}" width="${2 * s + 7}" height="${2 * s + 7}" fill="#f0efe8"/>`);
  let region: [number, number, number, number] = [0, 0, 0, 0];
  for (let k = 0; k < 4; k++) {
    const x = cx + (k % 2) * (s + 1);
    const y = cy + Math.floor(k / 2) * (s + 1);
    parts.push(shapeSvg(shapes[k]!, x, y, s, hex(COLORS[colors[k]!]!)));
    if (k === answerIndex) region = [x, y, x + s, y + s];
  }
  const letters = ['A', 'B', 'C', 'D'];
  const image = await renderSvg(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${parts.join('')}</svg>`);
  return {
    id: `vstar-syn-${seed}`,
    suite: 'vstar-syn',
    image,
    question: `What is the colour of the small ${shapes[answerIndex]}?`,
    choices: colors,
    answer: letters[answerIndex]!,
    kind: 'choice',
    metric: 'accuracy',
    region,
  };
}
