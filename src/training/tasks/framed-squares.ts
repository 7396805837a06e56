import type { Rng } from '../../util/random.js';
import { BACKGROUND, COLOR_NAMES, COLORS, hex } from './render.js';

/** V*'s scene: one square per choice colour, far apart; the answer's sits inside a bold black frame. */
export interface FramedSquares {
  colors: string[];
  answerIndex: number;
  /** The bold frame (a black rect, then the background inside it): drawn before the squares. */
  frameSvg: string[];
  squaresSvg: string[];
  /** The framed square, [x1, y1, x2, y2] in pixels. */
  region: [number, number, number, number];
}

/** Choices of a framed-squares question, one square each. */
const CHOICE_COUNT = 4;
/** The most unframed squares a scene can hold: one per other choice. */
export const MAX_DECOYS = CHOICE_COUNT - 1;

/**
 * Places the answer square and `decoys` others (0-3) in an image of w x h. The frame is the one
 * black thing in the scene (distractors are mid gray), easy to find at any resolution; reading
 * the colour it encloses means binding it to one of four coloured blobs. `background` fills the
 * gap between the frame and its square.
 */
export function framedSquares(rng: Rng, w: number, h: number, s: number, decoys: number, background = BACKGROUND): FramedSquares {
  const colors = [...COLOR_NAMES].sort(() => rng.next() - 0.5).slice(0, CHOICE_COUNT);
  const answerIndex = rng.int(CHOICE_COUNT);
  const stroke = Math.max(4, Math.round(s / 4));
  const gap = Math.max(3, Math.round(s / 8));
  const margin = 20 + stroke + gap;
  // Past this the square itself could leave the image (below it the frame may be clipped at an edge, which training data has used).
  if (s + margin > Math.min(w, h)) throw new Error(`a ${s} px square with its ${margin} px margin does not fit a ${w}x${h} image`);
  // A crop reaches at most 0.2 of the image past the target (tenths rounding plus the tool's 0.1
  // padding); squares further apart than that on some axis never share a crop.
  const apart = (a: [number, number], b: [number, number]) => Math.abs(a[0] - b[0]) > 0.2 * w + s + margin || Math.abs(a[1] - b[1]) > 0.2 * h + s + margin;
  const placed: [number, number][] = [];
  for (let tries = 0; placed.length < 1 + decoys && tries < 1000; tries++) {
    const p: [number, number] = [margin + rng.int(w - 2 * margin - s), margin + rng.int(h - 2 * margin - s)];
    if (placed.every((q) => apart(p, q))) placed.push(p);
  }
  const [x, y] = placed[0]!;
  const frameSvg = [
    blackFrameSvg(x - gap, y - gap, s + 2 * gap, s + 2 * gap, stroke),
    `<rect x="${x - gap}" y="${y - gap}" width="${s + 2 * gap}" height="${s + 2 * gap}" fill="${background}"/>`,
  ];
  const others = colors.filter((_, i) => i !== answerIndex);
  const squaresSvg = placed.map(([px, py], i) => {
    const color = i === 0 ? colors[answerIndex]! : others[i - 1]!;
    return `<rect x="${px}" y="${py}" width="${s}" height="${s}" fill="${hex(COLORS[color]!)}"/>`;
  });
  return { colors, answerIndex, frameSvg, squaresSvg, region: [x, y, x + s, y + s] };
}

/**
 * V*'s bold frame: a black rect reaching `stroke` px past the box (x, y, w, h) on every side. Drawn
 * before what fills the box, which covers its middle.
 */
export function blackFrameSvg(x: number, y: number, w: number, h: number, stroke: number): string {
  return `<rect x="${x - stroke}" y="${y - stroke}" width="${w + 2 * stroke}" height="${h + 2 * stroke}" fill="#000000"/>`;
}
