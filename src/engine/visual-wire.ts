import type { RgbImage } from '../tools/image.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import type { ResizedFrames } from '../model/processor/patchify.js';

/**
 * Visual inputs on their way to the model's runtime: every frame's bytes packed in one buffer (a
 * reused one, transferred and handed back), each input naming its frames by offset. The bytes are
 * an eighth of the pixel values the runtime makes of them in a buffer of its own.
 */
export interface VisualWire {
  bytes: Uint8Array;
  inputs: { frames: { offset: number; width: number; height: number }[]; width: number; height: number }[];
  /** Each input's patch grid (t, h, w), the vision graph's image_grid_thw. */
  grid: BigInt64Array;
}

/** Packs inputs into `buffer` (at least packedBytes(inputs) long); a frame listed twice is packed once. */
export function packVisuals(inputs: VisualInput[], buffer: ArrayBuffer): VisualWire {
  const bytes = new Uint8Array(buffer, 0, packedBytes(inputs));
  const offsets = new Map<RgbImage, number>();
  let at = 0;
  const wireInputs = inputs.map((x) => ({
    width: x.width,
    height: x.height,
    frames: x.frames.map((f) => {
      let offset = offsets.get(f);
      if (offset === undefined) {
        offset = at;
        bytes.set(f.data, at);
        at += f.data.length;
        offsets.set(f, offset);
      }
      return { offset, width: f.width, height: f.height };
    }),
  }));
  return { bytes, inputs: wireInputs, grid: BigInt64Array.from(inputs.flatMap((x) => x.grid.map(BigInt))) };
}

export function packedBytes(inputs: VisualInput[]): number {
  return [...new Set(inputs.flatMap((x) => x.frames))].reduce((a, f) => a + f.data.length, 0);
}

/** The inputs as frames over views of the packed bytes (a frame packed once is one object again). */
export function unpackVisuals(wire: VisualWire): ResizedFrames[] {
  const frames = new Map<number, RgbImage>();
  return wire.inputs.map((x) => ({
    width: x.width,
    height: x.height,
    frames: x.frames.map((f) => {
      let frame = frames.get(f.offset);
      if (!frame) frames.set(f.offset, (frame = { data: wire.bytes.subarray(f.offset, f.offset + f.width * f.height * 3), width: f.width, height: f.height }));
      return frame;
    }),
  }));
}
