import { Rng } from '../../util/random.js';
import { blackFrameSvg } from './framed-squares.js';
import { BACKGROUND, COLORS, hex, renderScene, SHAPES, shapeSvg } from './render.js';
import { IMAGE_SIDE_RANGE, type OptionRanges, type Task } from './types.js';

export interface TallyOptions {
  width: number;
  height: number;
  /** Side of each counted object, and the gap between neighbours, in pixels. */
  objectSize: number;
  gap: number;
  /** The tray holds a cols x rows grid of places, some left empty. */
  cols: number;
  rows: number;
  distractors: number;
  /** Width of a bold black frame around the tray (V*'s frame, found at any resolution); 0: none. */
  frame: number;
  /** Colours in the tray (1 to all of TALLY_COLORS); the first is the one asked about. */
  palette: number;
}

export const TALLY_DEFAULTS: TallyOptions = { width: 1280, height: 960, objectSize: 4, gap: 2, cols: 6, rows: 4, distractors: 60, frame: 0, palette: 3 };

/** Well-separated hues only: blended edges of one must not read as another. */
export const TALLY_COLORS = ['red', 'green', 'blue', 'yellow'];

export const TALLY_RANGES: OptionRanges<TallyOptions> = {
  width: IMAGE_SIDE_RANGE, height: IMAGE_SIDE_RANGE, objectSize: [1, 256], gap: [0, 64], cols: [1, 16], rows: [1, 16], distractors: [0, 500], frame: [0, 64], palette: [1, TALLY_COLORS.length],
};

/**
 * TallyQA-like: how many objects of one colour lie in a small tray of a large image (integer
 * answer). Objects are small and packed: at the model's input resolution neighbours merge, and
 * only a zoom into the tray (the ground-truth region) separates them.
 */
export async function tallyTask(seed: number, opts: TallyOptions = TALLY_DEFAULTS): Promise<Task> {
  const rng = new Rng(seed * 104729 + 7);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const { width: w, height: h, objectSize: s, gap, cols, rows } = opts;
  const parts: string[] = [`<rect width="${w}" height="${h}" fill="${BACKGROUND}"/>`];
  for (let i = 0; i < opts.distractors; i++) {
    const size = 30 + rng.int(90);
    const g = 90 + rng.int(120);
    parts.push(shapeSvg(pick(SHAPES), rng.int(w - size), rng.int(h - size), size, hex([g, g, g - 10])));
  }
  const pitch = s + gap;
  const trayW = cols * pitch + gap;
  const trayH = rows * pitch + gap;
  if (trayW + 80 > w || trayH + 80 > h) throw new Error(`tally-syn: a ${cols}x${rows} tray of ${s} px objects (${trayW}x${trayH} px) does not fit a ${w}x${h} image with its 40 px margin`);
  const tx = 40 + rng.int(w - 80 - trayW);
  const ty = 40 + rng.int(h - 80 - trayH);
  if (opts.frame > 0) parts.push(blackFrameSvg(tx, ty, trayW, trayH, opts.frame));
  parts.push(`<rect x="${tx}" y="${ty}" width="${trayW}" height="${trayH}" fill="#ffffff" stroke="#555555" stroke-width="1"/>`);
  const palette = [...TALLY_COLORS].sort(() => rng.next() - 0.5).slice(0, opts.palette);
  const target = palette[0]!;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (rng.next() < 0.35) continue;
      const color = pick(palette);
      if (color === target) count++;
      parts.push(shapeSvg(pick(SHAPES), tx + gap + c * pitch, ty + gap + r * pitch, s, hex(COLORS[color]!)));
    }
  }
  const image = await renderScene(w, h, parts);
  return {
    id: `tally-syn-${seed}`,
    suite: 'tally-syn',
    image,
    question: `How many ${target} objects are in the white tray?`,
    answer: String(count),
    kind: 'integer',
    metric: 'accuracy',
    region: [tx, ty, tx + trayW, ty + trayH],
  };
}
