import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeVideoFile, uniformFrameIndices } from '../../src/tools/video.js';

test('uniform frame sampling includes the first and last frame', () => {
  assert.deepEqual(uniformFrameIndices(64, 16), [0, 4, 8, 13, 17, 21, 25, 29, 34, 38, 42, 46, 50, 55, 59, 63]);
  assert.deepEqual(uniformFrameIndices(5, 16), [0, 1, 2, 3, 4]);
});

test('without ffmpeg on PATH, decoding names the Debian package to install', async () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await assert.rejects(decodeVideoFile('/tmp/x.mp4', { frames: 16, maxPixels: 1e6, timeoutMs: 5000 }), /install the Debian package "ffmpeg"/);
  } finally {
    process.env.PATH = path;
  }
});
