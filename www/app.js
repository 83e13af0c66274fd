// The demo imports Hearth exactly as an npm user would: `import ... from '@hearth-llm/hearth'`
// resolves (through the import map) to the package installed in node_modules.
//
// Modules: engine.js (where models run, the one generation call), chat.js (the chat card),
// cache.js (the cache panel), models.js (instruct or base, which model the chat opens on,
// picked files), ui.js (DOM helpers, model colours). This file wires them to the catalog,
// the memory gauge and the developer panes.
import init, { SseStreamer, GgufFile, checkDevice, version, HearthError, CancelledError, ModelLoadError } from '@hearth-llm/hearth';
import { createEngine } from './engine.js';
import { setupChat } from './chat.js';
import { setupCache } from './cache.js';
import { learnCatalog, isInstruct, isPicked, pickChatModel, entryForFile, notePicked } from './models.js';
import { $, el, mb, modelColor, swatch } from './ui.js';

await init();
$('version').textContent = `v${version()}`;

// The developer panes start open where there is room, closed on a phone.
const roomy = matchMedia('(min-width: 700px)').matches;
for (const pane of document.querySelectorAll('details.dev')) pane.open = roomy;

// The models `./run` fetched into models/ (served under /models) replace the built-in entries'
// Hugging Face URLs; the larger built-in models keep theirs. Each entry says whether it is an
// instruct model (it chats) or a base model (it continues text).
const catalog = await fetch('models.json').then((r) => r.json());
learnCatalog(catalog);
const params = new URLSearchParams(location.search);
const backend = params.get('backend') || 'auto';
$('backend').value = backend;
$('backend').onchange = () => { params.set('backend', $('backend').value); location.search = params; };

const streamer = new SseStreamer({ bufferSize: 1024 });
let manager = null;
let memory = null;
let pending = false; // a gauge/catalog redraw is scheduled
let loadAbort = null;

// --- Status log: every event as it arrives, newest first; text only, never HTML. -----------
let count = 0;
streamer.subscribe((e) => {
  count += 1;
  $('event-count').textContent = `${count} events`;
  const li = el('li', { class: `t-${e.type}` },
    el('span', { class: 'id', text: String(e.id) }),
    el('span', { class: 'type', text: e.type }),
    el('span', { class: 'msg', text: describe(e) }));
  $('log').prepend(li);
  while ($('log').childElementCount > 400) $('log').lastElementChild.remove();
  if (e.type === 'progress') showProgress(e);
  if (e.type === 'metrics') scheduleRefresh();
});

function describe(e) {
  const d = e.data;
  switch (e.type) {
    case 'info': return d;
    case 'error': return `${d.name}: ${d.message}`;
    case 'progress': return `${e.modelKey ?? ''} ${d.phase} ${mb(d.loaded)}${d.total !== undefined ? ` of ${mb(d.total)} (${d.percent.toFixed(1)}%)` : ''}`.trim();
    case 'metrics': return `used ${mb(d.usedBytes)}${d.budgetBytes !== undefined ? ` of ${mb(d.budgetBytes)} (${d.usagePercent}%)` : ''}${d.loadedModels !== undefined ? `, ${d.loadedModels} model(s)` : ''}`;
    case 'token': return JSON.stringify(d.text);
    case 'done': return `${d.generatedTokens} tokens, ${d.decodeTokensPerSecond.toFixed(2)} tok/s (${d.stopReason})`;
    default: return JSON.stringify(d);
  }
}

// The same events as SSE bytes, the way a Service Worker would relay them.
(async () => {
  const reader = streamer.eventStream({ replay: 1024 }).pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const pre = $('sse');
    pre.textContent = (pre.textContent + value).slice(-6000);
    pre.scrollTop = pre.scrollHeight;
  }
})();

// --- The manager ------------------------------------------------------------------------------
let executor;
try {
  ({ manager, executor } = await createEngine({ streamer, backend, catalog }));
} catch (err) {
  showError(err);
  document.body.dataset.ready = 'true';
  throw err;
}
memory = manager.memoryManager;
window.hearth = { streamer, manager, executor, memory };
$('device').textContent = `${manager.backend}${memory.adapter?.device ? ` · ${memory.adapter.device}` : ''} · budget ${mb(memory.budget.bytes)} (${memory.budget.explanation})`;

const chat = setupChat({ executor, streamer });
const cache = setupCache({ manager, streamer, onError: (err) => showError(err) });

$('check').disabled = false;
$('check').onclick = async () => {
  const r = await checkDevice(manager.backend, 64, 512, 64);
  streamer.streamInfo(`Matmul self-check on ${manager.backend}: relative L2 error ${r.relL2Error.toExponential(2)} (${r.relL2Error < 1e-4 ? 'pass' : 'FAIL'}).`);
};

function setLowVram(on) {
  memory.setSimulationLowVRAM(on);
  $('low-vram').checked = on;
}
$('low-vram').onchange = () => {
  setLowVram($('low-vram').checked);
  streamer.streamInfo($('low-vram').checked
    ? 'Simulating a low-VRAM device (256 MB): canLoadModel now answers for that budget.'
    : 'Low-VRAM simulation off.');
  refresh();
};
// `?lowvram` opens the page as a 256 MB device would see it.
if (params.has('lowvram')) setLowVram(params.get('lowvram') !== '0');

// --- Memory gauge: the budget as a bar, one segment per resident model, in the model's colour. --
function drawGauge() {
  const s = memory.getStats();
  const bar = $('gauge-bar');
  bar.replaceChildren();
  const budget = Math.max(s.budgetBytes, 1);
  let registered = 0;
  for (const m of s.loaded) {
    registered += m.bytes;
    const seg = el('div', { class: 'seg', title: `${m.key}: ${mb(m.bytes)}${m.pinned ? ' (pinned)' : ''}` });
    seg.dataset.key = m.key;
    seg.style.width = `${Math.min(100, (100 * m.bytes) / budget)}%`;
    seg.style.background = modelColor(m.key);
    seg.append(el('span', { text: m.key }));
    bar.append(seg);
  }
  // What the allocator holds beyond the models (pools, scratch): measured, not guessed.
  const other = Math.max(0, s.reservedBytes - registered);
  if (other > 0 && s.measured) {
    const seg = el('div', { class: 'seg other', title: `allocator pools and scratch: ${mb(other)}` });
    seg.style.width = `${Math.min(100, (100 * other) / budget)}%`;
    bar.append(seg);
  }
  bar.classList.toggle('over', s.reservedBytes > s.budgetBytes);
  $('gauge-text').textContent = `${mb(s.reservedBytes)} of ${mb(s.budgetBytes)} (${s.usagePercent}%)${s.simulated ? ' · simulated budget' : ''} · ${s.loaded.length} model(s) resident · ${s.measured ? 'measured by the allocator' : 'registered sizes'}`;
}

// --- Catalog: what fits, and why not. -------------------------------------------------------
function drawCatalog() {
  const rows = manager.catalog();
  const current = manager.currentModel;
  const body = $('models');
  body.replaceChildren();
  for (const r of rows) {
    const fits = r.fit.can || r.fit.fitsAfterEviction;
    const status = r.loaded
      ? el('span', { class: `badge ${r.key === current ? 'current' : 'loaded'}`, text: r.key === current ? 'current' : 'loaded' })
      : el('span', { class: `badge ${fits ? 'fits' : 'nofit'}`, text: r.fit.can ? 'fits' : fits ? 'fits after unloading' : 'does not fit' });
    const resident = manager.loadedModels().find((m) => m.key === r.key);
    const why = el('div', { class: 'why', text: resident ? `Resident: ${mb(resident.bytes)}` : r.fit.reason });
    const buttons = el('div', { class: 'row' });
    const act = (label, f, cls = '') => {
      const b = el('button', { text: label, class: cls, 'aria-label': `${label} ${r.key}` });
      b.dataset.key = r.key;
      b.dataset.action = label.toLowerCase();
      b.onclick = () => f(r.key);
      buttons.append(b);
    };
    if (r.key !== current) act('Load', switchTo);
    if (!r.loaded) act('Preload', preload, 'secondary');
    if (r.loaded) act('Unload', unload, 'secondary');
    const kind = isInstruct(r)
      ? el('span', { class: 'pill kind', text: 'chat' })
      : el('span', { class: 'pill kind base', text: 'base: continues text' });
    const tr = el('tr', {},
      el('td', {}, swatch(r.key), el('strong', { text: r.key }), kind, isPicked(r.key) ? el('span', { class: 'pill', text: 'your file' }) : '',
        el('div', { class: 'muted', text: r.description || '' })),
      el('td', { text: `${r.quant} · ${mb(r.fileBytes)}` }),
      el('td', { text: `${mb(r.fit.requiredBytes)}${r.exact || r.requiredBytes ? '' : ' (est.)'}`, title: r.exact ? 'exact, from the file header' : r.requiredBytes ? 'from the catalog' : 'estimated from the file size until the header is read' }),
      el('td', {}, status, why),
      el('td', {}, buttons));
    tr.dataset.key = r.key;
    body.append(tr);
  }
  const row = rows.find((r) => r.key === current);
  chat.setModel(current ?? null, row ? isInstruct(row) : false);
}

function scheduleRefresh() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; refresh(); });
}
function refresh() {
  if (!manager) return;
  drawGauge();
  drawCatalog();
}

// --- Loading, with progress and errors where the user looks. ---------------------------------
function showProgress(e) {
  const d = e.data;
  $('progress-box').hidden = d.phase === 'ready';
  $('load-progress').value = d.percent ?? 0;
  $('load-status').textContent = `${e.modelKey}: ${d.phase} ${mb(d.loaded)}${d.total !== undefined ? ` of ${mb(d.total)}` : ''} (${(d.percent ?? 0).toFixed(0)}%)`;
}

function showError(err) {
  const box = $('model-error');
  box.replaceChildren();
  box.hidden = false;
  const code = err instanceof HearthError && err.code ? ` (${err.code})` : '';
  box.append(el('p', { text: err instanceof HearthError ? `${err.name}: ${err.message}${code}` : String(err) }));
  if (err instanceof ModelLoadError && err.requiredBytes !== undefined) {
    box.append(el('p', { class: 'muted', text: `Required ${mb(err.requiredBytes)}, available ${mb(err.availableBytes)}.` }));
  }
  const suggestions = err?.suggestions ?? [];
  if (suggestions.length) {
    const row = el('div', { class: 'row suggestions' }, el('span', { text: 'Models that fit:' }));
    for (const s of suggestions) {
      const b = el('button', { text: `Load ${s.key} (${mb(s.requiredBytes)})` });
      b.dataset.suggestion = s.key;
      b.onclick = () => switchTo(s.key);
      row.append(b);
    }
    box.append(row);
  }
}

/** Runs a load/unload with Cancel live; errors go to `onError` (the models card by default). */
async function run(f, onError = showError) {
  $('model-error').hidden = true;
  loadAbort = new AbortController();
  $('cancel-load').disabled = false;
  try {
    await f(loadAbort.signal);
  } catch (err) {
    if (!(err instanceof CancelledError)) onError(err);
  } finally {
    $('cancel-load').disabled = true;
    $('progress-box').hidden = true;
    refresh();
    cache.draw();
  }
}
const switchTo = (key, onError) => run((signal) => manager.switchModel(key, { signal }), onError);
const preload = (key) => run((signal) => manager.preload(key, { signal }));
const unload = (key) => run(() => manager.unload(key));
$('cancel-load').onclick = () => loadAbort?.abort();

// --- Open a GGUF file from disk: its header says what it is; then it is a catalog model. -------
$('open-file').onclick = () => $('file').click();
$('file').onchange = async () => {
  const file = $('file').files[0];
  $('file').value = '';
  if (!file) return;
  try {
    const gguf = await GgufFile.fromBlob(file);
    const taken = (k) => manager.catalog().some((r) => r.key === k);
    const { entry, instruct } = entryForFile(file, gguf, taken);
    gguf.free();
    manager.registerModel(entry);
    notePicked(entry.key, instruct);
    streamer.streamInfo(`Opened ${file.name} as ${entry.key} (${entry.arch}, ${entry.quant}, ${instruct ? 'chat template: chats' : 'no chat template: continues text'}).`);
    refresh();
    await switchTo(entry.key, (err) => chat.showError(err));
  } catch (err) {
    chat.showError(err);
  }
};

refresh();
cache.draw();
document.body.dataset.ready = 'true';

// The chat opens on the best instruct model that fits this device (`?model=<key>` names one,
// `?model=none` opens on none).
const wanted = params.get('model');
const opening = wanted === null ? pickChatModel(manager.catalog()) : wanted === 'none' ? undefined : wanted;
streamer.streamInfo(opening
  ? `Hearth ready on ${manager.backend}. Opening the chat on ${opening}.`
  : `Hearth ready on ${manager.backend}. ${wanted === 'none' ? 'Load' : 'No chat model fits this device; load'} any model from the list.`);
if (opening) switchTo(opening);
