import type { ProcessorConfig } from '../model/config.js';
import { cropRegion, type RgbImage } from './image.js';
import { resizeTarget, roundHalfEven } from '../model/processor/image-processor.js';
import type { ToolCall } from './tool-call.js';
import type { ToolName } from './definitions.js';

/** What a visual operation may look at: every image so far (originals, then results) and the video, if any. */
export interface VisualContext {
  /** Full-resolution images, 1-based for `target_image` (crops are kept at their cropped resolution). */
  images: RgbImage[];
  /** Sampled frames of the request's video, 1-based for `select_frames`. */
  videoFrames?: RgbImage[];
  /** Tools this request may call. */
  enabledTools: ToolName[];
  processor: ProcessorConfig;
}

export interface ToolSuccess {
  ok: true;
  tool: ToolName;
  /** Images to append to the conversation (full resolution). */
  images: RgbImage[];
  /** The result turn's text, exactly as the reference writes it. */
  text: string;
  /** crop: the box actually cropped, in pixels of the target image [x1, y1, x2, y2]. */
  box?: [number, number, number, number];
  targetImage?: number;
  /** select_frames: 1-based frame indices. */
  frames?: number[];
  /** Size the result is shown to the model at. */
  resultSize: [number, number];
}

export interface ToolFailure {
  ok: false;
  tool?: string;
  error: string;
}

export type ToolOutcome = ToolSuccess | ToolFailure;

export const MAX_SELECTED_FRAMES = 8;
export const MIN_CROP_SIDE = 28;
const PADDING = 0.1;

const fail = (error: string, tool?: string): ToolFailure => ({ ok: false, error, tool });

async function cropImageNormalized(args: Record<string, unknown>, ctx: VisualContext): Promise<ToolOutcome> {
  const tool = 'crop_image_normalized';
  const bbox = args.bbox_2d;
  if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    return fail(`Invalid bbox_2d: expected [x1, y1, x2, y2] with 4 numbers, got ${JSON.stringify(bbox ?? null)}.`, tool);
  }
  const [bx1, by1, bx2, by2] = bbox as [number, number, number, number];
  if (!(bx1 < bx2 && by1 < by2)) return fail(`Invalid bbox_2d ${JSON.stringify(bbox)}: x1 must be less than x2 and y1 less than y2.`, tool);
  const target = args.target_image ?? 1;
  const n = ctx.images.length;
  if (n === 0) return fail('There is no image to crop in this conversation.', tool);
  if (typeof target !== 'number' || !Number.isInteger(target) || target < 1 || target > n) {
    return fail(`Invalid target_image ${JSON.stringify(target)}: valid images are 1 to ${n}.`, tool);
  }
  const img = ctx.images[target - 1]!;
  const normalized = bbox.every((v) => (v as number) < 1);
  const [nx1, ny1, nx2, ny2] = normalized ? [bx1, by1, bx2, by2] : [bx1 / img.width, by1 / img.height, bx2 / img.width, by2 / img.height];
  if (nx1 >= 1 || ny1 >= 1 || nx2 <= 0 || ny2 <= 0) {
    return fail(`The bounding box ${JSON.stringify(bbox)} is outside the image (size ${img.width}x${img.height}).`, tool);
  }
  const clamp = (v: number) => Math.min(Math.max(0, v), 1);
  const left = roundHalfEven(clamp(nx1 - PADDING) * img.width);
  const top = roundHalfEven(clamp(ny1 - PADDING) * img.height);
  const right = roundHalfEven(clamp(nx2 + PADDING) * img.width);
  const bottom = roundHalfEven(clamp(ny2 + PADDING) * img.height);
  const w = right - left;
  const h = bottom - top;
  if (!(w > MIN_CROP_SIDE && h > MIN_CROP_SIDE)) return fail(`Cropped image is too small: ${w}x${h}`, tool);
  const cropped = cropRegion(img, left, top, right, bottom);
  const [rw, rh] = resizeTarget(cropped, ctx.processor);
  return {
    ok: true, tool, images: [cropped], box: [left, top, right, bottom], targetImage: target, resultSize: [rw, rh],
    text: `\nHere is the cropped image (Image Size: ${rw}x${rh}):`,
  };
}

function selectFrames(args: Record<string, unknown>, ctx: VisualContext): ToolOutcome {
  const tool = 'select_frames';
  if (!ctx.videoFrames || ctx.videoFrames.length === 0) {
    return fail('You attempted to select frames from an **image**, but this operation is only designed for analyzing videos. Think again.', tool);
  }
  const frames = args.target_frames;
  const n = ctx.videoFrames.length;
  if (!Array.isArray(frames) || frames.length === 0 || !frames.every((f) => typeof f === 'number' && Number.isInteger(f))) {
    return fail(`Invalid target_frames: expected a list of 1 to ${MAX_SELECTED_FRAMES} frame indices from 1 to ${n}, got ${JSON.stringify(frames ?? null)}.`, tool);
  }
  if (frames.length > MAX_SELECTED_FRAMES) {
    return fail(`Too many frames: you selected ${frames.length}, but at most ${MAX_SELECTED_FRAMES} frames can be selected at once.`, tool);
  }
  const bad = (frames as number[]).find((f) => f < 1 || f > n);
  if (bad !== undefined) return fail(`Invalid frame index ${bad}: the video has frames 1 to ${n}.`, tool);
  const selected = (frames as number[]).map((f) => ctx.videoFrames![f - 1]!);
  const [rw, rh] = resizeTarget(selected[0]!, ctx.processor);
  const first = ctx.images.length + 1;
  return {
    ok: true, tool, images: selected, frames: frames as number[], resultSize: [rw, rh],
    text: `\nHere are the selected frames (Frame Size: ${rw}x${rh}, Numbered ${first} to ${first + selected.length - 1}):`,
  };
}

/** Runs one tool call with the reference's semantics; never throws for bad arguments. */
export async function executeToolCall(call: ToolCall, ctx: VisualContext): Promise<ToolOutcome> {
  if (!(ctx.enabledTools as string[]).includes(call.name)) {
    return fail(`Unknown tool "${call.name}". Available tools: ${ctx.enabledTools.join(', ') || 'none'}.`, call.name);
  }
  try {
    if (call.name === 'crop_image_normalized') return await cropImageNormalized(call.arguments, ctx);
    return selectFrames(call.arguments, ctx);
  } catch (e) {
    return fail(`${call.name} failed: ${(e as Error).message}`, call.name);
  }
}

/** The error turn the model sees after a failed call. */
export function errorTurnText(error: string): string {
  return `\nExecution error:\n${error}\n`;
}
