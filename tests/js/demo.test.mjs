// The demo page end to end: load a model from the picker, watch the status log, chat with
// streamed tokens. SmolLM2 on the CPU backend keeps it quick on this GPU-less machine (WebGPU
// generation has its own tests in infer.test.mjs); screenshots go to artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness } from './harness.mjs';

let h;
before(async () => { h = await openHarness('/'); });
after(async () => { await h?.close(); });

test('demo: load SmolLM2, see the load sequence in the log, chat with streamed tokens', async () => {
  const { page } = h;
  await page.selectOption('#model-key', 'smollm2-135m');
  await page.selectOption('#model-backend', 'cpu');
  await page.click('#load');
  await page.waitForFunction(() => !document.querySelector('#send').disabled, null, { timeout: 120_000 });
  const log = await page.$$eval('#log li .msg', (els) => els.map((e) => e.textContent));
  assert.ok(log.includes('Loading model smollm2-135m...'), log.slice(0, 12).join(' | '));
  assert.ok(log.includes('Model smollm2-135m loaded successfully.'));
  assert.ok(log.some((l) => /^upload .* of .* \(100\.0%\)$/.test(l)), 'a progress line at 100%');
  await h.screenshot('demo-loaded.png');

  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', '12');
  await page.fill('#prompt', 'What is the capital of France?');
  await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#chat-stats').textContent.includes('tok/s'), null, { timeout: 120_000 });
  const answer = await page.textContent('#chat .assistant');
  assert.ok(answer.length > 0, 'tokens were streamed into the chat');
  assert.match(answer, /Paris/);
  const tokens = await page.$$eval('#log li.t-token', (els) => els.length);
  assert.ok(tokens >= 1, 'token events in the log');
  await h.screenshot('demo-chat.png');
  assert.deepEqual(h.pageErrors.map(String), []);
});
