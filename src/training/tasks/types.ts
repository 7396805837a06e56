import type { RgbImage } from '../../tools/image.js';
import type { AnswerKind } from '../metrics.js';

export type SuiteName = 'vstar-syn' | 'tally-syn' | 'mvbench-syn' | 'infovqa-syn';

/** One synthetic question with its ground truth (deterministic per suite and seed). */
export interface Task {
  id: string;
  suite: SuiteName;
  image?: RgbImage;
  frames?: RgbImage[];
  question: string;
  /** Multiple-choice options, shown to the model as `A: ...` lines. */
  choices?: string[];
  answer: string;
  /** Accepted variants (ANLS suites). */
  answers?: string[];
  kind: AnswerKind;
  metric: 'accuracy' | 'anls';
  /** Where the answer is, in pixels of the image: [x1, y1, x2, y2]. */
  region?: [number, number, number, number];
  /** Frames (1-based) that hold the answer. */
  answerFrames?: number[];
}

/** Allowed image width and height of every suite, in pixels. */
export const IMAGE_SIDE_RANGE = [128, 4096] as const;

/** Each option's allowed values, [min, max] (integers); a training config's overrides are checked against them. */
export type OptionRanges<Options> = Record<keyof Options, readonly [number, number]>;
