import { spawn } from 'node:child_process';
import sharp, { type Metadata } from 'sharp';
import type { RgbImage } from './image.js';

export class VideoInputError extends Error {
  constructor(message: string, readonly code: 'ffmpeg_missing' | 'invalid_video' | 'video_too_large') {
    super(message);
  }
}

/** Frames sampled from a video, and how many of them per second of the video (when its duration is known). */
export interface SampledVideo {
  frames: RgbImage[];
  /** Sampled frames per second of video: Qwen2.5-VL's temporal positions follow it (second_per_grid_ts). */
  fps?: number;
}

export interface VideoLimits {
  /** Frames to sample uniformly over the whole video. */
  frames: number;
  /** Largest width*height of one frame. */
  maxPixels: number;
  /** Wall-clock limit for each ffmpeg/ffprobe process. */
  timeoutMs: number;
}

/** Indices of `n` frames spread uniformly over `total` (first and last included), as Qwen's samplers do. */
export function uniformFrameIndices(total: number, n: number): number[] {
  if (total <= n) return Array.from({ length: total }, (_, i) => i);
  return Array.from({ length: n }, (_, k) => Math.round((k * (total - 1)) / (n - 1)));
}

function run(command: string, args: string[], timeoutMs: number, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new VideoInputError(`${command} took longer than ${timeoutMs} ms`, 'invalid_video'));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      size += d.length;
      if (size > maxBytes) {
        child.kill('SIGKILL');
        reject(new VideoInputError(`decoded video is larger than ${maxBytes} bytes`, 'video_too_large'));
      } else chunks.push(d);
    });
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new VideoInputError('Decoding video files needs ffmpeg: install the Debian package "ffmpeg" (apt-get install ffmpeg).', 'ffmpeg_missing') : e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new VideoInputError(`${command} could not decode the video: ${stderr.trim().split('\n').at(-1) ?? `exit ${code}`}`, 'invalid_video'));
    });
  });
}

/** Sampled frames per second of a video of `seconds` (undefined when the duration is unknown). */
function sampledFps(count: number, seconds: number | undefined): number | undefined {
  return seconds && Number.isFinite(seconds) && seconds > 0 ? count / seconds : undefined;
}

/** Decodes a video file with Debian's ffmpeg into `limits.frames` uniformly sampled RGB frames. */
export async function decodeVideoFile(path: string, limits: VideoLimits): Promise<SampledVideo> {
  const probe = (await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=width,height,nb_read_packets,duration:format=duration', '-of', 'json', path], limits.timeoutMs, 1 << 20)).toString();
  const probed = JSON.parse(probe) as { streams?: { width?: number; height?: number; nb_read_packets?: string; duration?: string }[]; format?: { duration?: string } };
  const stream = probed.streams?.[0];
  const width = stream?.width ?? 0;
  const height = stream?.height ?? 0;
  const total = Number(stream?.nb_read_packets ?? 0);
  if (!width || !height || !total) throw new VideoInputError('the file has no decodable video stream', 'invalid_video');
  if (width * height > limits.maxPixels) throw new VideoInputError(`video frames are ${width}x${height}, over the limit of ${limits.maxPixels} pixels`, 'video_too_large');
  const indices = uniformFrameIndices(total, limits.frames);
  const select = indices.map((i) => `eq(n\\,${i})`).join('+');
  const frameBytes = width * height * 3;
  const raw = await run('ffmpeg', ['-v', 'error', '-i', path, '-vf', `select='${select}'`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], limits.timeoutMs, frameBytes * indices.length + 1);
  const count = Math.floor(raw.length / frameBytes);
  if (count === 0) throw new VideoInputError('ffmpeg returned no frames', 'invalid_video');
  const frames = Array.from({ length: count }, (_, k) => ({ data: new Uint8Array(raw.buffer, raw.byteOffset + k * frameBytes, frameBytes), width, height }));
  return { frames, fps: sampledFps(count, Number(stream?.duration ?? probed.format?.duration)) };
}

/** Animated GIF / WebP through sharp's `pages`, sampled like a video (its duration from the frame delays). */
export async function decodeAnimatedImage(bytes: Uint8Array, limits: VideoLimits): Promise<SampledVideo> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { pages: -1, limitInputPixels: false }).metadata();
  } catch (e) {
    throw new VideoInputError(`could not decode animation: ${(e as Error).message}`, 'invalid_video');
  }
  const pages = meta.pages ?? 1;
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  if (width * height > limits.maxPixels) throw new VideoInputError(`animation frames are ${width}x${height}, over the limit of ${limits.maxPixels} pixels`, 'video_too_large');
  const frames = await Promise.all(
    uniformFrameIndices(pages, limits.frames).map(async (page) => {
      const { data, info } = await sharp(bytes, { page, pages: 1 }).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
    }),
  );
  const delays = meta.delay?.slice(0, pages);
  return { frames, fps: sampledFps(frames.length, delays && delays.length === pages ? delays.reduce((a, b) => a + b, 0) / 1000 : undefined) };
}
