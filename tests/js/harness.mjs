// Shared set-up for page tests and benchmarks: the demo server on a free port and
// headless Debian Chromium with WebGPU on (SwiftShader here), through playwright-core.
import { chromium } from '../../tools/node_modules/playwright-core/index.mjs';
import { startServer } from '../../tools/serve.mjs';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = join(ROOT, 'artifacts');

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function openHarness(path = '/harness/') {
  const server = await startServer({
    root: join(ROOT, 'www'),
    port: 0,
    mounts: {
      '/models': process.env.HEARTH_MODELS_DIR || join(ROOT, 'models'),
      '/golden': join(ROOT, 'tests', 'golden'),
      // Tiny random-weight models (tools/make_fixtures.py, written by `./run test`).
      '/fixtures': join(ROOT, '.cache', 'fixtures'),
    },
    testRoutes: true,
  });
  // A second origin without CORS headers, for the cross-origin failure test.
  const foreign = await startServer({ root: join(ROOT, 'www'), port: 0 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e));
  page.on('console', (m) => {
    if (process.env.HEARTH_VERBOSE) console.log(`[page ${m.type()}] ${m.text()}`);
  });
  await page.goto(origin + path);
  await page.waitForFunction(() => document.body && document.body.dataset.ready === 'true', null, { timeout: 120_000 });
  return {
    origin,
    foreignOrigin: `http://127.0.0.1:${foreign.address().port}`,
    page,
    pageErrors,
    async screenshot(name) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
    },
    async close() {
      await browser.close();
      server.closeAllConnections();
      foreign.closeAllConnections();
      await new Promise((ok) => server.close(ok));
      await new Promise((ok) => foreign.close(ok));
    },
  };
}
