import sharp, { type Metadata, type Sharp } from 'sharp';

/** A decoded image: tightly packed 8-bit RGB, row-major. Not modified once made: a prompt image's preprocessed input is kept by image (preprocessImage). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeLimits {
  /** Largest width*height accepted (decompression bombs fail before allocation). */
  maxPixels: number;
}

export class ImageInputError extends Error {
  constructor(message: string, readonly code: 'invalid_image' | 'image_too_large') {
    super(message);
  }
}

/**
 * Decodes any format sharp reads into RGB: EXIF orientation applied, alpha composited on white
 * (as Qwen's convert_rgb does), greyscale expanded.
 */
export async function decodeImage(input: Uint8Array, limits: DecodeLimits): Promise<RgbImage> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageInputError(`could not decode image: ${(e as Error).message}`, 'invalid_image');
  }
  if (!meta.width || !meta.height) throw new ImageInputError('could not decode image: unknown dimensions', 'invalid_image');
  if (meta.width * meta.height > limits.maxPixels) {
    throw new ImageInputError(`image is ${meta.width}x${meta.height} = ${meta.width * meta.height} pixels, over the limit of ${limits.maxPixels}`, 'image_too_large');
  }
  try {
    const { data, info } = await sharp(input, { limitInputPixels: limits.maxPixels })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`unexpected ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw new ImageInputError(`could not decode image: ${(e as Error).message}`, 'invalid_image');
  }
}

function toSharp(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

/**
 * Pixel-exact crop (integer box, left/top inclusive, right/bottom exclusive). Its rows are copied from the
 * source only when its `data` is first read (a later crop of the crop, a thumbnail): the model's resize reads
 * them in place through imageRow, so a crop the model only looks at allocates nothing. Done here rather than
 * by sharp's extract, which copies the whole source image into a pipeline on libuv's threads (~1-2 ms of CPU
 * for a 1600x1000 image, on cores the model shares).
 */
export function cropRegion(img: RgbImage, left: number, top: number, right: number, bottom: number): RgbImage {
  const ok = [left, top, right, bottom].every(Number.isInteger) && left >= 0 && top >= 0 && right <= img.width && bottom <= img.height;
  if (!ok || left >= right || top >= bottom) {
    throw new RangeError(`crop box [${left}, ${top}, ${right}, ${bottom}] is not inside the ${img.width}x${img.height} image`);
  }
  // A crop of a crop reads the first source: images are never modified once made.
  if (img instanceof CroppedImage) return new CroppedImage(img.source, img.left + left, img.top + top, right - left, bottom - top);
  return new CroppedImage(img, left, top, right - left, bottom - top);
}

/** A box of a source image, copied out on first use of `data`. */
class CroppedImage implements RgbImage {
  private copied?: Uint8Array;

  constructor(readonly source: RgbImage, readonly left: number, readonly top: number, readonly width: number, readonly height: number) {}

  get data(): Uint8Array {
    if (!this.copied) {
      const rowBytes = this.width * 3;
      this.copied = new Uint8Array(rowBytes * this.height);
      for (let y = 0; y < this.height; y++) this.copied.set(imageRow(this, y), y * rowBytes);
    }
    return this.copied;
  }

  /** Row y read in place from the source. */
  sourceRow(y: number): Uint8Array {
    return imageRow(this.source, this.top + y).subarray(this.left * 3, (this.left + this.width) * 3);
  }
}

/** The byte length of an image's pixels, without copying a crop's rows out of its source. */
export function pixelBytes(img: RgbImage): number {
  return img instanceof CroppedImage ? img.width * img.height * 3 : img.data.length;
}

/** Row y of an image (width * 3 bytes), without copying a crop's rows out of its source. */
export function imageRow(img: RgbImage, y: number): Uint8Array {
  if (img instanceof CroppedImage) return img.sourceRow(y);
  return img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3);
}

export async function encodeJpeg(img: RgbImage, maxSide: number, quality = 80): Promise<Buffer> {
  return toSharp(img).resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true }).jpeg({ quality }).toBuffer();
}
