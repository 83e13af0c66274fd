// Every WGSL variant the GPU engine can launch, through Chromium's own WebGPU compiler (Tint),
// as the browser gets it (the subgroup kernels with `enable subgroups;`, the f16 family's with
// `enable f16;`): shader module compilation info and compute pipeline creation must report no
// error. Variants whose feature the adapter lacks are counted as skipped (SwiftShader has no
// `shader-f16`; naga validates those natively), and the adapter's features are printed. The
// sources come from the native validation test (`HEARTH_DUMP_WGSL`), so this needs cargo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '../../tools/node_modules/playwright-core/index.mjs';
import { CHROMIUM_ARGS, ROOT } from './harness.mjs';

function sources() {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-wgsl-'));
  execFileSync('cargo', ['test', '--lib', '--', 'every_variant_parses_and_validates'], {
    cwd: ROOT,
    env: { ...process.env, HEARTH_DUMP_WGSL: dir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return readdirSync(dir).filter((f) => f.endsWith('.wgsl')).sort().map((f) => readFileSync(join(dir, f), 'utf8'));
}

async function compileAll(page, codes) {
  return page.evaluate(async (codes) => {
    const adapter = await navigator.gpu.requestAdapter();
    const offered = ['subgroups', 'shader-f16'].filter((f) => adapter.features.has(f));
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: offered,
      requiredLimits: {
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
    const info = adapter.info || {};
    const out = {
      adapter: `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim(),
      offered,
      subgroupSizes: [info.subgroupMinSize, info.subgroupMaxSize],
      compiled: 0,
      skipped: 0,
      subgroupCompiled: 0,
      f16Compiled: 0,
      failures: [],
    };
    for (const code of codes) {
      const needs = code.includes('enable subgroups;') ? 'subgroups' : code.includes('enable f16;') ? 'shader-f16' : null;
      if (needs && !device.features.has(needs)) {
        out.skipped++;
        continue;
      }
      const errors = [];
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code });
      const ci = await module.getCompilationInfo();
      for (const m of ci.messages) if (m.type === 'error') errors.push(`${m.lineNum}:${m.linePos} ${m.message}`);
      try {
        await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'k_main' } });
      } catch (e) {
        errors.push(String(e && e.message ? e.message : e));
      }
      const scoped = await device.popErrorScope();
      if (scoped) errors.push(scoped.message);
      if (errors.length) out.failures.push({ variant: code.split('\n')[0], errors: errors.slice(0, 3) });
      else {
        out.compiled++;
        if (needs === 'subgroups') out.subgroupCompiled++;
        if (needs === 'shader-f16') out.f16Compiled++;
      }
    }
    device.destroy();
    return out;
  }, codes);
}

test('every WGSL variant compiles in Chromium where the adapter has its features', async () => {
  const codes = sources();
  assert.ok(codes.length > 200, `${codes.length} variants`);
  const server = createServer((_, res) => {
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>wgsl</title>');
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const r = await compileAll(page, codes);
    console.log(
      `${r.adapter}: features ${JSON.stringify(r.offered)}, subgroup sizes ${JSON.stringify(r.subgroupSizes)}; ` +
        `${r.compiled} variants compiled (${r.subgroupCompiled} subgroup, ${r.f16Compiled} f16), ` +
        `${r.skipped} skipped (feature missing)`,
    );
    assert.deepEqual(r.failures, [], 'every variant compiles');
    assert.equal(r.compiled + r.skipped, codes.length);
    if (r.offered.includes('subgroups')) assert.ok(r.subgroupCompiled > 50, 'the subgroup variants ran');
    if (r.offered.includes('shader-f16')) assert.ok(r.f16Compiled > 0, 'the f16 variants ran');
  } finally {
    await browser.close();
    server.close();
  }
});
