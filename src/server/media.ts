import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage, ImageInputError, type RgbImage } from '../tools/image.js';
import { decodeAnimatedImage, decodeVideoFile, VideoInputError, type SampledVideo, type VideoLimits } from '../tools/video.js';
import { ApiError } from './errors.js';

export interface MediaLimits {
  maxImagePixels: number;
  allowedMediaHosts: string[];
  allowedMediaDirs: string[];
  videoFrames: number;
  maxVideoBytes: number;
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

function videoError(e: unknown, param: string): never {
  if (e instanceof VideoInputError) {
    const status = e.code === 'video_too_large' ? 413 : e.code === 'invalid_video' ? 422 : 400;
    throw new ApiError(status, e.message, e.code, param);
  }
  throw e;
}

/**
 * Resolves a video_url to uniformly sampled frames: a data: URL (video/* through Debian's ffmpeg,
 * animated image/gif or image/webp through sharp) or a file under an allowed directory.
 */
export async function loadVideoUrl(url: string, param: string, limits: MediaLimits): Promise<SampledVideo> {
  const video: VideoLimits = { frames: limits.videoFrames, maxPixels: limits.maxImagePixels, timeoutMs: 60_000 };
  const m = DATA_URL_RE.exec(url);
  try {
    if (m) {
      const mime = m[1]!.toLowerCase();
      if (!(m[2] ?? '').includes('base64')) throw new ApiError(400, 'Video data URLs must be base64-encoded.', 'invalid_video_url', param);
      const bytes = Buffer.from(m[3]!, 'base64');
      if (bytes.length > limits.maxVideoBytes) throw new ApiError(413, `Video is ${bytes.length} bytes, over the limit of ${limits.maxVideoBytes}.`, 'video_too_large', param);
      if (mime === 'image/gif' || mime === 'image/webp') return await decodeAnimatedImage(bytes, video);
      if (!mime.startsWith('video/')) throw new ApiError(400, `Expected a video data URL (data:video/...;base64,...), got media type "${mime || 'none'}".`, 'invalid_video_url', param);
      const dir = await mkdtemp(join(tmpdir(), 'prs-video-'));
      try {
        const file = join(dir, 'input');
        await writeFile(file, bytes);
        return await decodeVideoFile(file, video);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const path = url.startsWith('file://') ? fileURLToPath(url) : url;
    if (!isAbsolute(path)) throw new ApiError(400, 'video_url.url must be a data: URL or an absolute file path (or file:// URL) under an allowed directory.', 'invalid_video_url', param);
    const file = resolve(path);
    const allowed = limits.allowedMediaDirs.some((d) => {
      const rel = relative(resolve(d), file);
      return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
    });
    if (!allowed) throw new ApiError(400, `Reading ${file} is not allowed: add its directory to allowedMediaDirs.`, 'media_path_not_allowed', param);
    if (/\.(gif|webp)$/i.test(file)) return await decodeAnimatedImage(await readFile(file), video);
    return await decodeVideoFile(file, video);
  } catch (e) {
    return videoError(e, param);
  }
}
