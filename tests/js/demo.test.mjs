// The demo page end to end, as a person uses it: the catalog says what fits; loading the default
// model (Gemma 3 270M) shows the ModelManager v3.1 design's sequence in the status log; chat answers stream in;
// with "simulate low VRAM" a model that cannot fit shows the error with the models that do as
// buttons, and one click loads the suggestion (unloading the LRU model to make room).
// The page's 'auto' backend takes the CPU on this machine's SwiftShader adapter (and says so);
// WebGPU generation has its own tests. Screenshots go to artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openHarness, ROOT } from './harness.mjs';

// llama.cpp's greedy answer for the chat case below (tools/llamacpp_generate.mjs). This Gemma 3
// 270M file is the base model (no chat template in the GGUF; llama.cpp's built-in "gemma"
// template is used): it echoes the question rather than answering, and so must we.
const GEMMA = JSON.parse(readFileSync(join(ROOT, 'tests', 'golden', 'generate', 'gemma-3-270m-q4_k_m.json'), 'utf8'));
const MOUNTAIN = GEMMA.cases.find((c) => c.kind === 'chat' && c.prompt.includes('tallest mountain'));

let h;
before(async () => { h = await openHarness('/'); });
after(async () => { await h?.close(); });

const logLines = (page) => page.$$eval('#log li .msg', (els) => els.map((e) => e.textContent).reverse());

test('demo: load the default model, chat with streamed tokens, low VRAM error with suggestions that load', async () => {
  const { page } = h;
  const row = (key) => `#models tr[data-key="${key}"]`;
  await page.waitForSelector(row('gemma-3-270m'));
  // The catalog: every model with what it needs and whether it fits.
  const fits = await page.$$eval('#models tr', (trs) => trs.map((tr) => [tr.dataset.key, tr.querySelector('.badge').textContent]));
  assert.deepEqual(fits.slice(0, 3).map((f) => f[0]), ['gemma-3-270m', 'smollm2-135m', 'qwen2.5-0.5b']);
  assert.ok(fits.slice(0, 3).every((f) => f[1] === 'fits'), JSON.stringify(fits));

  await page.click(`${row('gemma-3-270m')} button[data-action="load"]`);
  await page.waitForFunction(() => window.hearth.manager.currentModel === 'gemma-3-270m', null, { timeout: 180_000 });
  let log = await logLines(page);
  const at = (line) => log.indexOf(line);
  const seq = ['Checking memory for gemma-3-270m...', 'Loading model gemma-3-270m...', 'Model gemma-3-270m loaded successfully.'];
  assert.ok(seq.every((l, i) => at(l) >= 0 && (i === 0 || at(l) > at(seq[i - 1]))), log.slice(-40).join(' | '));
  const progress = log.filter((l, i) => i > at(seq[1]) && i < at(seq[2]) && /^gemma-3-270m upload .* \(\d+\.\d%\)$/.test(l));
  assert.ok(progress.length >= 100, `${progress.length} progress lines`);
  assert.ok(progress.at(-1).endsWith('(100.0%)'), progress.at(-1));
  assert.ok(log.some((l, i) => i > at(seq[1]) && l.startsWith('used ')), 'metrics while loading');
  assert.equal(await page.textContent(`${row('gemma-3-270m')} .badge`), 'current');
  assert.match(await page.textContent('#gauge-bar'), /gemma-3-270m/, 'the gauge shows the resident model');
  await h.screenshot('demo-loaded.png');

  const chat = async (prompt, maxTokens) => {
    await page.fill('#temperature', '0');
    await page.fill('#max-tokens', String(maxTokens));
    await page.fill('#prompt', prompt);
    await page.evaluate(() => { document.querySelector('#chat-stats').textContent = ''; });
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector('#chat-stats').textContent.includes('tok/s'), null, { timeout: 180_000 });
    assert.match(await page.textContent("#chat-stats"), /^\d+ tokens · TTFT [\d.]+ s · [\d.]+ tok\/s/);
    const answers = await page.$$eval('#chat .assistant', (els) => els.map((e) => e.textContent));
    return answers.at(-1);
  };
  const question = 'What is the tallest mountain in the world?';
  assert.ok(MOUNTAIN.prompt.includes(question));
  const echo = await chat(question, 10);
  assert.ok(echo.length > 0 && MOUNTAIN.text.startsWith(echo), `${JSON.stringify(echo)} vs llama.cpp ${JSON.stringify(MOUNTAIN.text)}`);
  const tokens = await page.$$eval('#log li.t-token', (els) => els.length);
  assert.ok(tokens >= 10, 'token events in the log');
  await h.screenshot('demo-chat.png');

  // Low VRAM: Qwen (517 MB) cannot fit in 256 MB even after unloading Gemma; SmolLM2 can.
  await page.check('#low-vram');
  await page.waitForFunction(() => document.querySelector('#models tr[data-key="qwen2.5-0.5b"] .badge').textContent === 'does not fit');
  await page.click(`${row('qwen2.5-0.5b')} button[data-action="load"]`);
  await page.waitForSelector('#model-error:not([hidden]) button[data-suggestion]');
  const error = await page.textContent('#model-error p');
  assert.match(error, /^ModelLoadError: Cannot load qwen2\.5-0\.5b: Not enough VRAM \(available: 0 B, required: 517 MB\)/);
  const suggestions = await page.$$eval('#model-error button[data-suggestion]', (bs) => bs.map((b) => b.dataset.suggestion));
  assert.deepEqual(suggestions, ['smollm2-135m']);
  log = await logLines(page);
  assert.ok(log.some((l) => l.startsWith('ModelLoadError: Cannot load qwen2.5-0.5b: Not enough VRAM')), 'the error is on the stream too');
  await h.screenshot('demo-low-vram.png');

  await page.click('#model-error button[data-suggestion="smollm2-135m"]');
  await page.waitForFunction(() => window.hearth.manager.currentModel === 'smollm2-135m', null, { timeout: 180_000 });
  log = await logLines(page);
  assert.ok(log.includes('Unloading gemma-3-270m to make room for smollm2-135m.'), log.slice(-20).join(' | '));
  assert.ok(log.includes('Model smollm2-135m loaded successfully.'));
  assert.equal(await page.isHidden('#model-error'), true);
  assert.doesNotMatch(await page.textContent('#gauge-bar'), /gemma/);
  await h.screenshot('demo-fallback.png');
  // SmolLM2 is an instruct model: a real answer.
  assert.match(await chat('What is the capital of France?', 12), /Paris/);
  await h.screenshot('demo-chat-smollm2.png');
  assert.deepEqual(h.pageErrors.map(String), []);
});
