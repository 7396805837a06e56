import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import type { RunningServer } from '../src/server/server.js';
import { decodeAnimatedImage, decodeVideoFile, uniformFrameIndices } from '../src/tools/video.js';
import { startTestServer } from '../test/helpers.js';
import { requireTool } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'prs-video-test-'));
const video = join(dir, 'light.mp4');
let server: RunningServer;

/** 64 gray frames at 8 fps; frames 38-42 carry the answer (a red frame). */
before(async () => {
  const ffmpeg = requireTool('ffmpeg', 'ffmpeg');
  const r = spawnSync(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=160x120:r=8:d=8',
    '-vf', "drawbox=x=0:y=0:w=160:h=120:color=red:t=fill:enable='between(n,38,42)'", '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '1', video]);
  assert.equal(r.status, 0, r.stderr?.toString());
  server = await startTestServer({ allowedMediaDirs: [dir] });
});
after(() => server?.close());

const isRed = (f: { data: Uint8Array }) => f.data[0]! > 180 && f.data[1]! < 90 && f.data[2]! < 90;

test('ffmpeg samples 16 uniform frames of a 64-frame video; the answer frames are where expected', async () => {
  const { frames, fps } = await decodeVideoFile(video, { frames: 16, maxPixels: 1e7, timeoutMs: 30_000 });
  assert.equal(frames.length, 16);
  assert.equal(fps, 2, '16 frames sampled from an 8 s video: 2 per second (Qwen2.5-VL temporal positions follow it)');
  assert.deepEqual(uniformFrameIndices(64, 16).slice(9, 11), [38, 42]);
  assert.deepEqual(frames.map(isRed).flatMap((red, i) => (red ? [i + 1] : [])), [10, 11]);
});

test('select_frames on a video_url picks the right sampled frames; more than 8 is an error turn (200)', async () => {
  const ask = async (url: string, target: number[]) => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'user', content: [{ type: 'video_url', video_url: { url } }, { type: 'text', text: 'When is the screen red?' }] },
          { role: 'assistant', content: `<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": ${JSON.stringify(target)}}}\n</tool_call>` },
        ],
        max_tokens: 2,
        temperature: 0,
      }),
    });
    const body = (await res.json()) as any;
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.choices[0].pixel_reasoning.steps[0];
  };
  const fromFile = await ask(video, [10, 11]);
  assert.equal(fromFile.ok, true);
  assert.deepEqual(fromFile.frames, [10, 11]);
  const dataUrl = `data:video/mp4;base64,${readFileSync(video).toString('base64')}`;
  const fromData = await ask(dataUrl, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(fromData.result_text, '\nExecution error:\nToo many frames: you selected 9, but at most 8 frames can be selected at once.\n');
  const outOfRange = await ask(dataUrl, [17]);
  assert.equal(outOfRange.error, 'Invalid frame index 17: the video has frames 1 to 16.');
});

test('paths outside the allowed directories and non-video data URLs are refused', async () => {
  const post = (url: string) => fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url } }] }], max_tokens: 1 }),
  });
  const outside = await post('/etc/passwd');
  assert.equal(outside.status, 400);
  assert.equal(((await outside.json()) as any).error.code, 'media_path_not_allowed');
  const corrupt = await post(`data:video/mp4;base64,${Buffer.from('not a video').toString('base64')}`);
  assert.equal(corrupt.status, 422);
});

test('animated GIF frames come through sharp pages', async () => {
  const frames = await Promise.all(Array.from({ length: 6 }, (_, i) => sharp({ create: { width: 40, height: 30, channels: 3, background: i === 3 ? '#ff0000' : { r: 40 * i, g: 40 * i, b: 40 * i } } }).raw().toBuffer()));
  const gif = await sharp(Buffer.concat(frames), { raw: { width: 40, height: 30 * 6, channels: 3, pageHeight: 30 } as never }).gif().toBuffer();
  const { frames: decoded } = await decodeAnimatedImage(gif, { frames: 16, maxPixels: 1e6, timeoutMs: 10_000 });
  assert.equal(decoded.length, 6);
  assert.deepEqual(decoded.map(isRed), [false, false, false, true, false, false]);
});
