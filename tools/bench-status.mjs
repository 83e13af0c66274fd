// Benchmark: status events dispatched per second in headless Chromium, with 0, 1
// and 10 subscribers, against the peer every web app already has — a bare
// EventTarget dispatching CustomEvents with the same detail — and printed as a
// ratio. Not a test: it asserts nothing about speed.
//
//   ./run bench status   (HEARTH_BENCH_EVENTS=50000 to change the count)
import { openHarness } from '../tests/js/harness.mjs';
import { cpus, loadavg } from 'node:os';

const N = Number(process.env.HEARTH_BENCH_EVENTS || 20000);
const h = await openHarness();
try {
  const rows = await h.page.evaluate(async (n) => {
    const { SseStreamer } = window.hearth;
    const results = [];
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const subscribers of [0, 1, 10]) {
      const runHearth = () => {
        const s = new SseStreamer({ bufferSize: 256 });
        let sink = 0;
        for (let i = 0; i < subscribers; i++) s.subscribe((e) => { sink += e.id; });
        const t0 = performance.now();
        for (let i = 0; i < n; i++) s.streamInfo('Loading model gemma-3-270m...', 'gemma-3-270m');
        return performance.now() - t0;
      };
      const runPeer = () => {
        const target = new EventTarget();
        let sink = 0;
        for (let i = 0; i < subscribers; i++) target.addEventListener('info', (e) => { sink += e.detail.id; });
        const t0 = performance.now();
        for (let i = 1; i <= n; i++) {
          const detail = { type: 'info', data: 'Loading model gemma-3-270m...', id: i, timestamp: Date.now(), modelKey: 'gemma-3-270m' };
          target.dispatchEvent(new CustomEvent('info', { detail }));
        }
        return performance.now() - t0;
      };
      runHearth(); runPeer(); // warm-up
      const h = []; const p = [];
      for (let r = 0; r < 5; r++) { h.push(runHearth()); p.push(runPeer()); }
      const hearthRate = n / (median(h) / 1000);
      const peerRate = n / (median(p) / 1000);
      results.push({ subscribers, hearthEventsPerSec: Math.round(hearthRate), eventTargetEventsPerSec: Math.round(peerRate), ratio: +(hearthRate / peerRate).toFixed(3) });
    }
    return results;
  }, N);
  console.log(`SseStreamer dispatch, ${N} events x 5 runs (median), headless Chromium ${h.page.context().browser().version()}`);
  console.log(`machine: ${cpus().length} x ${cpus()[0].model}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('subscribers  hearth ev/s   EventTarget ev/s   hearth/EventTarget');
  for (const r of rows) {
    console.log(`${String(r.subscribers).padStart(11)}  ${String(r.hearthEventsPerSec).padStart(11)}   ${String(r.eventTargetEventsPerSec).padStart(16)}   ${r.ratio.toFixed(3).padStart(18)}`);
  }
  console.log(JSON.stringify({ bench: 'status-dispatch', events: N, rows }));
} finally {
  await h.close();
}
