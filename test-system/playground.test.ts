import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { startTestServer, testImagePng } from '../test/helpers.js';
import { requireTool } from './helpers.js';

const ARTIFACTS = join(import.meta.dirname, '../artifacts');

test('the playground runs a request and draws a box for a zoom step (headless Chromium)', async () => {
  const executablePath = requireTool('chromium', 'chromium');
  const server = await startTestServer();
  const image = join(tmpdir(), `prs-playground-${process.pid}.png`);
  writeFileSync(image, await testImagePng(900, 600, 7));
  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.setInputFiles('#file', image);
    await page.fill('#question', 'What is written in the lower right?');
    await page.click('details summary');
    await page.fill('#prefix', 'I need to look closer.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.6, 0.5, 0.9, 0.8], "target_image": 1}}\n</tool_call>');
    await page.fill('#max-tokens', '16');
    await page.click('#ask');
    const box = await page.waitForSelector('.box[data-step="1"]', { timeout: 30_000 });
    await page.waitForFunction("document.getElementById('status')?.textContent?.startsWith('done')", undefined, { timeout: 30_000 });
    const stage = (await page.locator('#original').boundingBox())!;
    const drawn = (await box.boundingBox())!;
    // Box [0.5, 0.4, 1.0, 0.9] of the image after 0.1 padding: x 450..900, y 240..540 of 900x600.
    assert.ok(Math.abs(drawn.x - stage.x - 0.5 * stage.width) < 3, `box left ${drawn.x - stage.x} of ${stage.width}`);
    assert.ok(Math.abs(drawn.width - 0.5 * stage.width) < 3);
    assert.ok(Math.abs(drawn.y - stage.y - 0.4 * stage.height) < 3);
    assert.equal(await page.locator('#crops canvas').count(), 1);
    assert.match((await page.locator('#steps li').first().textContent())!, /zoom into \[450, 240, 900, 540\]/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'playground.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});
