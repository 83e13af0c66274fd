// The cache panel: the model files the browser keeps (ModelManager.cachedModels), each with its
// size and digest, deleting one or all (clearCache), and what the browser's storage holds.
import { $, el, mb, swatch } from './ui.js';

let drawn = 0; // the newest redraw wins when two overlap

export function setupCache({ manager, streamer, onError }) {
  async function draw() {
    const mine = ++drawn;
    let files;
    let estimate;
    try {
      [files, estimate] = await Promise.all([
        manager.cachedModels(),
        navigator.storage?.estimate ? navigator.storage.estimate().catch(() => null) : null,
      ]);
    } catch (err) {
      onError(err);
      return;
    }
    if (mine !== drawn) return;
    const body = $('cache-list');
    body.replaceChildren();
    for (const f of files) {
      const del = el('button', { class: 'secondary', text: 'Delete', 'aria-label': `Delete ${f.key} from the cache` });
      del.dataset.action = 'delete';
      del.onclick = () => remove(f.key);
      const sha = f.sha256 ? el('code', { text: f.sha256.slice(0, 12), title: `SHA-256 ${f.sha256}` }) : el('span', { class: 'muted', text: 'none' });
      const tr = el('tr', {},
        el('td', {}, swatch(f.key), el('strong', { text: f.key }), el('div', { class: 'muted file', text: f.file })),
        el('td', { text: mb(f.bytes) }),
        el('td', {}, sha),
        el('td', {}, del));
      tr.dataset.key = f.key;
      body.append(tr);
    }
    const total = files.reduce((n, f) => n + f.bytes, 0);
    $('cache-empty').hidden = files.length > 0;
    $('clear-cache').disabled = files.length === 0;
    $('cache-total').textContent = `${files.length} file(s), ${mb(total)}`;
    $('storage').textContent = estimate
      ? `Browser storage for this site: ${mb(estimate.usage ?? 0)} used of ${mb(estimate.quota ?? 0)} (${((100 * (estimate.usage ?? 0)) / Math.max(estimate.quota ?? 1, 1)).toFixed(1)}%).`
      : 'This browser does not report its storage estimate.';
  }

  async function remove(key) {
    try {
      const n = await manager.clearCache(key ?? null);
      streamer.streamInfo(key ? `Deleted ${n} cached file(s) of ${key}.` : `Cleared the model cache (${n} file(s)).`);
    } catch (err) {
      onError(err);
    }
    await draw();
  }

  $('clear-cache').onclick = () => remove(undefined);
  return { draw };
}
