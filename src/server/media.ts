import { decodeImage, ImageInputError, type RgbImage } from '../tools/image.js';
import { ApiError } from './errors.js';

export interface MediaLimits {
  maxImagePixels: number;
  allowedMediaHosts: string[];
}

const DATA_URL_RE = /^data:([^;,]*)(;[^,]*)?,(.*)$/s;

async function fetchAllowed(url: URL, param: string, limits: MediaLimits): Promise<Uint8Array> {
  if (!limits.allowedMediaHosts.includes(url.hostname)) {
    throw new ApiError(400, `Fetching images from ${url.hostname} is not allowed: send the image as a data: URL, or add the host to allowedMediaHosts.`, 'media_url_not_allowed', param);
  }
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new ApiError(400, `Fetching ${url.href} failed with HTTP ${res.status}.`, 'media_fetch_failed', param);
  return new Uint8Array(await res.arrayBuffer());
}

/** Resolves an image_url (data: URL, or http(s) on an allow-listed host) to decoded RGB. */
export async function loadImageUrl(url: string, param: string, limits: MediaLimits): Promise<RgbImage> {
  let bytes: Uint8Array;
  const m = DATA_URL_RE.exec(url);
  if (m) {
    const mime = m[1]!.toLowerCase();
    if (!mime.startsWith('image/')) throw new ApiError(400, `Expected an image data URL (data:image/...;base64,...), got media type "${mime || 'none'}".`, 'invalid_image_url', param);
    if (!(m[2] ?? '').includes('base64')) throw new ApiError(400, 'Image data URLs must be base64-encoded.', 'invalid_image_url', param);
    bytes = Buffer.from(m[3]!, 'base64');
    if (bytes.length === 0) throw new ApiError(400, 'The image data URL is empty.', 'invalid_image_url', param);
  } else {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ApiError(400, 'image_url.url must be a data: URL or an http(s) URL.', 'invalid_image_url', param);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ApiError(400, `Unsupported image URL scheme ${parsed.protocol}`, 'invalid_image_url', param);
    bytes = await fetchAllowed(parsed, param, limits);
  }
  try {
    return await decodeImage(bytes, { maxPixels: limits.maxImagePixels });
  } catch (e) {
    if (e instanceof ImageInputError) {
      if (e.code === 'image_too_large') throw new ApiError(413, e.message, 'image_too_large', param);
      throw new ApiError(422, `The image could not be decoded: ${e.message}`, 'invalid_image', param);
    }
    throw e;
  }
}
