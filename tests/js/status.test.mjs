// Page tests of the built package, used the way an npm user uses it: the ES module
// imported through the demo's node_modules, in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness } from './harness.mjs';

let h;
before(async () => { h = await openHarness(); });
after(async () => { await h?.close(); });

test('a real EventSource reads the frames eventStream() writes', async () => {
  const result = await h.page.evaluate(async () => {
    const { SseStreamer } = window.hearth;
    const s = new SseStreamer();
    const stream = s.eventStream();
    s.streamInfo('Checking memory for gemma-3-270m...', 'gemma-3-270m');
    s.streamInfo('multi\nline\r\nmessage');
    s.streamProgress({ phase: 'download', loaded: 5, total: 10 }, 'gemma-3-270m');
    s.streamError(new TypeError('bad thing'));
    const expected = s.replay();
    // Read what the stream holds so far, then stop.
    const reader = stream.getReader();
    const chunks = [];
    for (let i = 0; i < expected.length; i++) chunks.push((await reader.read()).value);
    await reader.cancel();
    const body = new Blob(chunks);
    // Relay the bytes through the server, as a server-side relay would, and read
    // them with the browser's own EventSource.
    await fetch('/__relay/t1', { method: 'POST', body });
    const got = await new Promise((resolve, reject) => {
      const es = new EventSource('/__relay/t1');
      const seen = [];
      for (const type of ['info', 'progress', 'error']) {
        es.addEventListener(type, (e) => {
          seen.push({ type: e.type, lastEventId: e.lastEventId, detail: JSON.parse(e.data) });
          if (seen.length === expected.length) { es.close(); resolve(seen); }
        });
      }
      es.onerror = () => { es.close(); reject(new Error(`EventSource failed after ${seen.length} events`)); };
    });
    return { expected, got };
  });
  assert.equal(result.got.length, 4);
  result.got.forEach((g, i) => {
    assert.equal(g.type, result.expected[i].type);
    assert.equal(g.lastEventId, String(result.expected[i].id));
    assert.deepEqual(g.detail, result.expected[i]);
  });
  assert.equal(result.got[1].detail.data, 'multi\nline\r\nmessage');
  assert.equal(result.got[3].detail.data.name, 'TypeError');
  assert.match(result.got[3].detail.data.stack, /bad thing/);
});

test('errors are typed Error subclasses exported from the package', async () => {
  const r = await h.page.evaluate(() => {
    const { SseStreamer, HearthError, InvalidInputError } = window.hearth;
    const out = {};
    try { new SseStreamer({ bufferSize: 0 }); } catch (e) {
      out.ctor = { isInvalid: e instanceof InvalidInputError, isHearth: e instanceof HearthError, isError: e instanceof Error, name: e.name, code: e.code, message: e.message };
    }
    const s = new SseStreamer();
    try { s.streamProgress({ phase: 'upload', loaded: -1 }); } catch (e) {
      out.progress = { isInvalid: e instanceof InvalidInputError, code: e.code, message: e.message };
    }
    out.stillWorks = s.streamInfo('after a rejected call');
    return out;
  });
  assert.deepEqual({ ...r.ctor, message: undefined }, { isInvalid: true, isHearth: true, isError: true, name: 'InvalidInputError', code: 'INVALID_OPTIONS', message: undefined });
  assert.match(r.ctor.message, /bufferSize/);
  assert.equal(r.progress.isInvalid, true);
  assert.match(r.progress.message, /loaded/);
  assert.equal(r.stillWorks, 1, 'the rejected call emitted nothing and the instance is healthy');
});

test('subscribe, DOM listeners and a throwing listener, through the JS bindings', async () => {
  const r = await h.page.evaluate(() => {
    const { SseStreamer } = window.hearth;
    const s = new SseStreamer();
    const reported = [];
    const onError = (e) => { reported.push(e.message); e.preventDefault(); };
    window.addEventListener('error', onError);
    const a = [];
    const b = [];
    const unsubscribeThrower = s.subscribe(() => { throw new Error('listener bug'); });
    const unsubscribe = s.subscribe((e) => a.push(e.id), { replay: 0 });
    const listener = (ev) => b.push(ev.detail.data);
    s.addEventListener('info', listener);
    s.streamInfo('one');
    unsubscribe();
    s.removeEventListener('info', listener);
    s.streamInfo('two');
    unsubscribeThrower();
    window.removeEventListener('error', onError);
    return { a, b, reported, typeofUnsub: typeof unsubscribe };
  });
  assert.deepEqual(r.a, [1]);
  assert.deepEqual(r.b, ['one']);
  assert.equal(r.typeofUnsub, 'function');
  assert.equal(r.reported.length, 2, 'the exception was reported for each event, not thrown');
  assert.match(r.reported[0], /listener bug/);
});

test('the device initialises on WebGPU and the self-check passes', async () => {
  const r = await h.page.evaluate(async () => {
    const { SseStreamer, initDevice, checkDevice } = window.hearth;
    const s = new SseStreamer();
    const info = await initDevice(s, 'webgpu');
    const check = await checkDevice('webgpu', 32, 128, 16);
    return { info, check, log: s.replay().map((e) => e.data) };
  });
  assert.equal(r.info.kind, 'webgpu');
  assert.ok(r.check.relL2Error < 1e-4, JSON.stringify(r.check));
  assert.equal(r.log[0], 'Requesting a WebGPU adapter...');
  assert.match(r.log[1], /^WebGPU ready: /);
});

test('the demo page shows the live status stream', async () => {
  await h.page.goto(`${h.origin}/?backend=webgpu`);
  await h.page.waitForFunction(() => document.body.dataset.ready === 'true');
  await h.page.waitForSelector('#log li.t-info >> text=/WebGPU ready/', { timeout: 120_000 });
  await h.page.click('#check');
  await h.page.waitForSelector('#log li >> text=/self-check on webgpu.*pass/', { timeout: 120_000 });
  const sse = await h.page.textContent('#sse');
  assert.match(sse, /event: info\nid: \d+\ndata: \{"type":"info"/);
  await h.screenshot('demo-status-stream.png');
});
