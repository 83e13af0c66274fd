// The demo page end to end, as a person uses it. Opened as a 256 MB device ("simulate low
// VRAM"), the chat opens on the best instruct model that fits (SmolLM2 135M) and the status log
// shows the ModelManager v3.1 design's load sequence; the chat answers, copies, regenerates,
// takes a system prompt, starts anew, and shows a failed generation as an error bubble; the live
// region announces whole answers only. A model that cannot fit shows the error with the models
// that do as buttons. The base model (Gemma 3 270M) gets "continue the text" and continues like
// llama.cpp; the gauge and the catalog give each model one colour; the cache panel lists,
// deletes and clears; a GGUF file opened from disk loads and chats, a bad one is an error
// bubble; at 390 px nothing scrolls sideways and the developer panes start closed.
// The page's 'auto' backend takes the CPU on this machine's SwiftShader adapter (and says so);
// WebGPU generation has its own tests. Screenshots at phone and desktop sizes go to artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHarness, ROOT } from './harness.mjs';

// llama.cpp's greedy continuation of a plain prompt (tools/llamacpp_generate.mjs). This Gemma 3
// 270M file is the base model: the demo gives it "continue the text".
const GEMMA = JSON.parse(readFileSync(join(ROOT, 'tests', 'golden', 'generate', 'gemma-3-270m-q4_k_m.json'), 'utf8'));
const FRANCE = GEMMA.cases.find((c) => c.kind === 'completion' && c.prompt === 'The capital of France is');
const MODELS = process.env.HEARTH_MODELS_DIR || join(ROOT, 'models');
const LOAD = { timeout: 240_000 };

let h;
let page;
before(async () => {
  h = await openHarness('/?lowvram=1');
  page = h.page;
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.origin });
  // Every text the live region ever held, in order.
  await page.evaluate(() => {
    window.announced = [];
    new MutationObserver(() => window.announced.push(document.querySelector('#announce').textContent))
      .observe(document.querySelector('#announce'), { childList: true, characterData: true, subtree: true });
  });
});
after(async () => { await h?.close(); });

const row = (key) => `#models tr[data-key="${key}"]`;
const logLines = () => page.$$eval('#log li .msg', (els) => els.map((e) => e.textContent).reverse());
const answers = () => page.$$eval('#chat .assistant .text', (els) => els.map((e) => e.textContent));
const opened = (key) => page.waitForFunction((k) => document.querySelector('#chat-card').dataset.model === k, key, LOAD);

async function settings(maxTokens) {
  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', String(maxTokens));
}
/** Clicks `selector`, which starts a generation in its click handler (the stats line is cleared first). */
async function start(selector) {
  await page.evaluate(() => { document.querySelector('#chat-stats').textContent = ''; });
  await page.click(selector);
}
/** Waits for the generation in flight to end (Stop disabled again) and returns the stats line. */
async function finished() {
  await page.waitForFunction(() => document.querySelector('#stop').disabled, null, LOAD);
  return page.textContent('#chat-stats');
}
async function chat(prompt, maxTokens) {
  await settings(maxTokens);
  await page.fill('#prompt', prompt);
  await start('#send');
  const stats = await finished();
  assert.match(stats, /^\d+ tokens · TTFT [\d.]+ s · [\d.]+ tok\/s · prefill [\d.]+ tok\/s · \d+ prompt tokens · /);
  return { answer: (await answers()).at(-1), stats };
}
const promptTokens = (stats) => Number(stats.match(/(\d+) prompt tokens/)[1]);

test('opens on the best instruct model that fits, with the load sequence in the status log', async () => {
  await opened('smollm2-135m');
  assert.equal(await page.getAttribute('#chat-card', 'data-mode'), 'chat');
  // The demo runs its models in a Worker (engine.js), the page keeps only the proxies.
  assert.equal(await page.evaluate(() => window.hearth.manager.inWorker), true);
  const log = await logLines();
  const at = (line) => log.indexOf(line);
  const seq = ['Opening the chat on smollm2-135m.', 'Checking memory for smollm2-135m...', 'Loading model smollm2-135m...', 'Model smollm2-135m loaded successfully.'];
  assert.ok(log.some((l) => l.endsWith(seq[0])), log.slice(0, 10).join(' | '));
  assert.ok(seq.slice(1).every((l, i) => at(l) >= 0 && (i === 0 || at(l) > at(seq[i]))), log.slice(-40).join(' | '));
  const progress = log.filter((l, i) => i > at(seq[2]) && i < at(seq[3]) && /^smollm2-135m upload .* \(\d+\.\d%\)$/.test(l));
  assert.ok(progress.length >= 50, `${progress.length} progress lines`);
  assert.ok(progress.at(-1).endsWith('(100.0%)'), progress.at(-1));
  assert.ok(log.some((l, i) => i > at(seq[2]) && l.startsWith('used ')), 'metrics while loading');
  assert.equal(await page.textContent(`${row('smollm2-135m')} .badge`), 'current');
  // Under 256 MB the other models do not fit; the developer panes are open on a desktop.
  assert.equal(await page.textContent(`${row('qwen2.5-0.5b')} .badge`), 'does not fit');
  assert.deepEqual(await page.$$eval('details.dev', (ds) => ds.map((d) => d.open)), [true, true]);
});

test('chat: answers, live region, copy, regenerate, system prompt, new chat, error bubble', async () => {
  const first = await chat('What is the capital of France?', 12);
  assert.match(first.answer, /Paris/);
  // The live region got the whole answer once, never a partial one.
  assert.deepEqual(await page.evaluate(() => window.announced.filter((t) => t)), [first.answer]);
  assert.equal(await page.getAttribute('#announce', 'aria-live'), 'polite');
  assert.equal(await page.getAttribute('#chat', 'aria-live'), null, 'the token stream itself is not announced');
  await h.screenshot('demo-desktop-chat.png');

  await page.click('#chat .assistant .copy');
  await page.waitForFunction(() => document.querySelector('#chat .assistant .copy').textContent === 'Copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), first.answer);

  // Regenerate replaces the last answer (the same one at temperature 0) and announces it again.
  await start('#regenerate');
  assert.match(await finished(), /tok\/s/);
  assert.deepEqual(await answers(), [first.answer]);
  assert.deepEqual(await page.evaluate(() => window.announced.filter((t) => t)), [first.answer, first.answer]);

  // New chat empties the conversation; a system prompt goes in front of the next one.
  await page.click('#new-chat');
  assert.equal(await page.$$eval('#chat .msg', (m) => m.length), 0);
  const plain = await chat('Hi', 2);
  await page.click('#new-chat');
  await page.fill('#system-prompt', 'You are a pirate. Answer like a pirate, in one short sentence.');
  const pirate = await chat('Hi', 2);
  assert.ok(promptTokens(pirate.stats) > promptTokens(plain.stats) + 10, `${plain.stats} / ${pirate.stats}`);
  assert.equal(await page.$$eval('#chat .user', (m) => m.length), 1, 'the new chat holds only its own turn');
  await page.fill('#system-prompt', '');

  // A generation that fails (more tokens than the context holds) is an error bubble in the chat.
  await settings(4000);
  await page.fill('#prompt', 'Tell me a long story.');
  await page.click('#send');
  await page.waitForSelector('#chat .msg.error', LOAD);
  assert.equal(await page.textContent('#chat .msg.error .name'), 'InvalidInputError');
  assert.match(await page.textContent('#chat .msg.error .message'), /context/);
  assert.match(await page.textContent('#chat .msg.error .code'), /^[A-Z_]+$/);
  assert.equal(await page.$$eval('#chat .assistant', (m) => m.length), 1, 'no empty answer bubble is left');
  await page.click('#new-chat');
});

test('low VRAM: a model that cannot fit shows the error, and one click loads a model that does', async () => {
  // Suggestions are models to load, so the resident one steps aside first.
  await page.click(`${row('smollm2-135m')} button[data-action="unload"]`);
  await page.waitForFunction(() => !document.querySelector('#chat-card').dataset.model);
  assert.equal(await page.isDisabled('#send'), true, 'no model, no chat');
  await page.click(`${row('qwen2.5-0.5b')} button[data-action="load"]`);
  await page.waitForSelector('#model-error:not([hidden]) button[data-suggestion]');
  const error = await page.textContent('#model-error p');
  assert.match(error, /^ModelLoadError: Cannot load qwen2\.5-0\.5b: Not enough VRAM \(available: [\d.]+ [KMG]?B, required: 517 MB\)/);
  const suggestions = await page.$$eval('#model-error button[data-suggestion]', (bs) => bs.map((b) => b.dataset.suggestion));
  assert.deepEqual(suggestions, ['smollm2-135m']);
  assert.ok((await logLines()).some((l) => l.startsWith('ModelLoadError: Cannot load qwen2.5-0.5b: Not enough VRAM')), 'the error is on the stream too');
  await h.screenshot('demo-low-vram.png');
  await page.click('#model-error button[data-suggestion="smollm2-135m"]');
  await opened('smollm2-135m');
  assert.equal(await page.isHidden('#model-error'), true);
  assert.equal(await page.getAttribute('#chat-card', 'data-mode'), 'chat');
});

test('base model: continue the text, like llama.cpp; one colour per model', async () => {
  await page.uncheck('#low-vram');
  await page.waitForFunction(() => document.querySelector('#models tr[data-key="qwen2.5-0.5b"] .badge').textContent === 'fits');
  assert.equal(await page.textContent(`${row('gemma-3-270m')} .badge`), 'fits');
  // With the full budget the best instruct model that fits is the largest the demo serves.
  assert.equal(await page.evaluate(async () => (await import('./models.js')).pickChatModel(window.hearth.manager.catalog())), 'qwen2.5-0.5b');
  assert.match(await page.textContent(`${row('gemma-3-270m')} .kind`), /^base/);
  assert.equal(await page.textContent(`${row('smollm2-135m')} .kind`), 'chat');

  await page.click(`${row('gemma-3-270m')} button[data-action="load"]`);
  await opened('gemma-3-270m');
  assert.equal(await page.getAttribute('#chat-card', 'data-mode'), 'continue');
  assert.equal(await page.isVisible('#continue-text'), true);
  assert.equal(await page.isVisible('#prompt'), false, 'no chat box for a base model');
  await settings(8);
  await page.fill('#continue-text', FRANCE.prompt);
  await start('#continue');
  assert.match(await finished(), /tok\/s/);
  const text = await page.inputValue('#continue-text');
  assert.ok(text.startsWith(FRANCE.prompt));
  const added = text.slice(FRANCE.prompt.length);
  assert.ok(added.length > 0 && FRANCE.text.startsWith(added), `${JSON.stringify(added)} vs llama.cpp ${JSON.stringify(FRANCE.text)}`);
  assert.equal(await page.evaluate(() => window.announced.at(-1)), added);
  assert.equal(await page.$$eval('#chat .msg', (m) => m.length), 0, 'no chat bubbles');

  // Both models resident, each in its own colour, the same in the gauge and the catalog.
  const colours = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#gauge-bar .seg[data-key]')].map((s) => [
    s.dataset.key,
    [getComputedStyle(s).backgroundColor, getComputedStyle(document.querySelector(`#models tr[data-key="${s.dataset.key}"] .swatch`)).backgroundColor],
  ])));
  assert.deepEqual(Object.keys(colours).sort(), ['gemma-3-270m', 'smollm2-135m']);
  for (const [k, [gauge, catalog]] of Object.entries(colours)) assert.equal(gauge, catalog, k);
  assert.notEqual(colours['gemma-3-270m'][0], colours['smollm2-135m'][0]);
  assert.equal(await page.$eval('#chat-model .swatch', (s) => getComputedStyle(s).backgroundColor), colours['gemma-3-270m'][0]);
  await h.screenshot('demo-desktop-continue.png');
});

test('cache panel: what is cached, delete one, clear all, the storage estimate', async () => {
  await page.waitForSelector('#cache-list tr[data-key="gemma-3-270m"]');
  const listed = await page.$$eval('#cache-list tr', (trs) => trs.map((tr) => [tr.dataset.key, tr.querySelector('code')?.textContent]));
  const expected = Object.fromEntries(JSON.parse(readFileSync(join(ROOT, 'www', 'models.json'), 'utf8')).map((e) => [e.key, e.sha256.slice(0, 12)]));
  assert.deepEqual(listed.map((l) => l[0]).sort(), ['gemma-3-270m', 'smollm2-135m']);
  for (const [key, sha] of listed) assert.equal(sha, expected[key], key);
  assert.match(await page.textContent('#cache-list tr[data-key="smollm2-135m"]'), /93\.8 MB|94 MB/);
  assert.match(await page.textContent('#storage'), /^Browser storage for this site: [\d.]+ [MG]B used of [\d.]+ [MG]B/);
  await page.click('#cache-list tr[data-key="gemma-3-270m"] button[data-action="delete"]');
  await page.waitForFunction(() => !document.querySelector('#cache-list tr[data-key="gemma-3-270m"]'));
  assert.deepEqual(await page.evaluate(async () => (await window.hearth.manager.cachedModels()).map((c) => c.key)), ['smollm2-135m']);
  await page.click('#clear-cache');
  await page.waitForFunction(() => document.querySelectorAll('#cache-list tr').length === 0);
  assert.equal(await page.isVisible('#cache-empty'), true);
  assert.deepEqual(await page.evaluate(async () => (await window.hearth.manager.cachedModels()).length), 0);
  assert.equal(await page.getAttribute('#chat-card', 'data-model'), 'gemma-3-270m', 'loaded models stay loaded');
});

test('open a GGUF file: a bad file is an error bubble, a real one loads and chats', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-demo-'));
  const bad = join(dir, 'not-a-model.gguf');
  writeFileSync(bad, 'This is a text file, not a GGUF model.\n'.repeat(64));
  await page.setInputFiles('#file', bad);
  await page.waitForSelector('#chat .msg.error');
  assert.equal(await page.textContent('#chat .msg.error .name'), 'ModelFormatError');
  assert.match(await page.textContent('#chat .msg.error .code'), /^[A-Z_]+$/);
  assert.equal(await page.getAttribute('#chat-card', 'data-model'), 'gemma-3-270m', 'nothing changed');

  await page.setInputFiles('#file', join(MODELS, 'smollm2-135m-instruct-q4_1.gguf'));
  await opened('smollm2-135m-instruct-q4_1');
  assert.equal(await page.getAttribute('#chat-card', 'data-mode'), 'chat', 'the file has a chat template');
  assert.match(await page.textContent(`${row('smollm2-135m-instruct-q4_1')}`), /your file/);
  assert.match(await page.textContent(`${row('smollm2-135m-instruct-q4_1')}`), /Q4_1/);
  const { answer } = await chat('What is the capital of France?', 12);
  assert.match(answer, /Paris/);
  assert.deepEqual(h.pageErrors.map(String), []);
});

test('phone, 390 px: no horizontal scroll, controls in reach, developer panes closed', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${h.origin}/?lowvram=1`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, LOAD);
  assert.deepEqual(await page.$$eval('details.dev', (ds) => ds.map((d) => d.open)), [false, false]);
  await opened('smollm2-135m');
  await chat('What is the capital of France?', 12);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${overflow} px of horizontal scroll`);
  for (const id of ['#prompt', '#send', '#stop', '#regenerate', '#new-chat', '#system-prompt', '#open-file', '#clear-cache', '#low-vram']) {
    const box = await page.locator(id).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${id} at ${JSON.stringify(box)}`);
  }
  const loadButtons = await page.$$eval('#models button', (bs) => bs.map((b) => b.getBoundingClientRect().right));
  assert.ok(loadButtons.every((r) => r <= 390), JSON.stringify(loadButtons));
  await h.screenshot('demo-phone.png');
  await page.click('#log-card summary');
  assert.equal(await page.$eval('#log-card', (d) => d.open), true);
  const stillNoScroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(stillNoScroll <= 0, `${stillNoScroll} px with the status log open`);
  assert.deepEqual(h.pageErrors.map(String), []);
});
