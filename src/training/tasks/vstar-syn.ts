import { Rng } from '../../util/random.js';
import { CHOICE_LETTERS } from '../metrics.js';
import { BACKGROUND, COLOR_NAMES, COLORS, hex, renderSvg, SHAPES, shapeSvg } from './render.js';
import type { Task } from './types.js';

export interface VstarOptions {
  width: number;
  height: number;
  /** Side of each coloured square, in pixels. */
  targetSize: number;
  /** Unframed squares in the other choice colours, each far from the framed one (0-3). */
  decoys: number;
  /** Large gray distractor shapes scattered over the image. */
  distractors: number;
}

export const VSTAR_DEFAULTS: VstarOptions = { width: 1280, height: 960, targetSize: 48, decoys: 3, distractors: 20 };

/**
 * V*-like: what colour is the square inside the black frame (multiple choice). The image
 * holds one square in each choice colour; only the answer's is framed. At the model's input
 * resolution each square is a blob of a few pixels: finding the frame is easy, but reading the
 * colour of what it encloses means binding the frame to one of four coloured blobs in one look.
 * The squares stand far apart, so a zoom around the frame leaves the others outside: the crop
 * shows one choice colour, the answer, over several tokens.
 */
export async function vstarTask(seed: number, opts: VstarOptions = VSTAR_DEFAULTS): Promise<Task> {
  const rng = new Rng(seed * 7919 + 1);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const { width: w, height: h, targetSize: s } = opts;
  const parts: string[] = [`<rect width="${w}" height="${h}" fill="${BACKGROUND}"/>`];
  for (let i = 0; i < opts.distractors; i++) {
    const size = 30 + rng.int(90);
    const g = 90 + rng.int(120);
    parts.push(shapeSvg(pick(SHAPES), rng.int(w - size), rng.int(h - size), size, hex([g, g, g - 10])));
  }
  const colors = [...COLOR_NAMES].sort(() => rng.next() - 0.5).slice(0, 4);
  const answerIndex = rng.int(4);
  // A bold frame: the one black thing in the image (distractors are mid gray), easy to find at any resolution.
  const stroke = Math.max(4, Math.round(s / 4));
  const gap = Math.max(3, Math.round(s / 8));
  const margin = 20 + stroke + gap;
  // A crop reaches at most 0.2 of the image past the target (tenths rounding plus the tool's 0.1
  // padding); squares further apart than that on some axis never share a crop.
  const apart = (a: [number, number], b: [number, number]) => Math.abs(a[0] - b[0]) > 0.2 * w + s + margin || Math.abs(a[1] - b[1]) > 0.2 * h + s + margin;
  const placed: [number, number][] = [];
  for (let tries = 0; placed.length < 1 + opts.decoys && tries < 1000; tries++) {
    const p: [number, number] = [margin + rng.int(w - 2 * margin - s), margin + rng.int(h - 2 * margin - s)];
    if (placed.every((q) => apart(p, q))) placed.push(p);
  }
  const [x, y] = placed[0]!;
  parts.push(`<rect x="${x - gap - stroke}" y="${y - gap - stroke}" width="${s + 2 * (gap + stroke)}" height="${s + 2 * (gap + stroke)}" fill="#000000"/>`);
  parts.push(`<rect x="${x - gap}" y="${y - gap}" width="${s + 2 * gap}" height="${s + 2 * gap}" fill="${BACKGROUND}"/>`);
  const others = colors.filter((_, i) => i !== answerIndex);
  placed.forEach(([px, py], i) => {
    const color = i === 0 ? colors[answerIndex]! : others[i - 1]!;
    parts.push(`<rect x="${px}" y="${py}" width="${s}" height="${s}" fill="${hex(COLORS[color]!)}"/>`);
  });
  const image = await renderSvg(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${parts.join('')}</svg>`);
  return {
    id: `vstar-syn-${seed}`,
    suite: 'vstar-syn',
    image,
    question: 'What is the colour of the square inside the black frame?',
    choices: colors,
    answer: CHOICE_LETTERS[answerIndex]!,
    kind: 'choice',
    metric: 'accuracy',
    region: [x, y, x + s, y + s],
  };
}
