import { Rng } from '../../util/random.js';
import { COLOR_NAMES, COLORS, hex, renderSvg, SHAPES, shapeSvg } from './render.js';
import type { Task } from './types.js';

export interface VstarOptions {
  width: number;
  height: number;
  /** Side of each of the four coloured squares of the target cluster, in pixels; the marking dot is a quarter of it. */
  targetSize: number;
  /** Large gray distractor shapes scattered over the image. */
  distractors: number;
}

export const VSTAR_DEFAULTS: VstarOptions = { width: 1280, height: 960, targetSize: 32, distractors: 20 };

const FRAME = 4;

/**
 * V*-like: which colour is the square that carries a white dot (multiple choice). The target is a
 * black-framed 2x2 cluster of squares in the four choice colours, easy to find at any resolution;
 * one square has a small white dot in its centre. At the model's input resolution the whole cluster
 * falls within about one patch, so what separates the squares (the dot) is below what a patch
 * resolves; in a zoomed crop each square covers a whole patch and the dotted one stands out. The
 * reading needs no shape recognition, only "which patch is whitened", which a small model learns.
 */
export async function vstarTask(seed: number, opts: VstarOptions = VSTAR_DEFAULTS): Promise<Task> {
  const rng = new Rng(seed * 7919 + 1);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const { width: w, height: h, targetSize: s } = opts;
  const dot = Math.max(2, Math.round(s / 4));
  const parts: string[] = [`<rect width="${w}" height="${h}" fill="#f0efe8"/>`];
  for (let i = 0; i < opts.distractors; i++) {
    const size = 30 + rng.int(90);
    const g = 90 + rng.int(120);
    parts.push(shapeSvg(pick(SHAPES), rng.int(w - size), rng.int(h - size), size, hex([g, g, g - 10])));
  }
  const colors = [...COLOR_NAMES].sort(() => rng.next() - 0.5).slice(0, 4);
  const answerIndex = rng.int(4);
  const margin = 40;
  const cx = margin + rng.int(w - 2 * margin - 2 * s);
  const cy = margin + rng.int(h - 2 * margin - 2 * s);
  parts.push(`<rect x="${cx - FRAME}" y="${cy - FRAME}" width="${2 * s + 2 * FRAME}" height="${2 * s + 2 * FRAME}" fill="#000000"/>`);
  let region: [number, number, number, number] = [0, 0, 0, 0];
  for (let k = 0; k < 4; k++) {
    const x = cx + (k % 2) * s;
    const y = cy + Math.floor(k / 2) * s;
    parts.push(`<rect x="${x}" y="${y}" width="${s}" height="${s}" fill="${hex(COLORS[colors[k]!]!)}"/>`);
    if (k === answerIndex) {
      region = [x, y, x + s, y + s];
      const d = (s - dot) / 2;
      parts.push(`<rect x="${x + d}" y="${y + d}" width="${dot}" height="${dot}" fill="#ffffff"/>`);
    }
  }
  const letters = ['A', 'B', 'C', 'D'];
  const image = await renderSvg(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${parts.join('')}</svg>`);
  return {
    id: `vstar-syn-${seed}`,
    suite: 'vstar-syn',
    image,
    question: 'In the black-framed group of four squares, what is the colour of the square with the white dot?',
    choices: colors,
    answer: letters[answerIndex]!,
    kind: 'choice',
    metric: 'accuracy',
    region,
  };
}
