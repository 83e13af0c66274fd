// The demo imports Hearth exactly as an npm user would: `import ... from '@hearth-llm/hearth'`
// resolves (through the import map) to the package installed in node_modules.
import init, {
  SseStreamer, ModelManager, TaskExecutor, checkDevice, version, HearthError, CancelledError, ModelLoadError,
} from '@hearth-llm/hearth';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e[k] = v;
  }
  e.append(...children);
  return e;
};
const mb = (n) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GB` : `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MB`);

await init();
$('version').textContent = `v${version()}`;

// The models `./run` fetched into models/ (served under /models) replace the built-in entries'
// Hugging Face URLs; the larger built-in models keep theirs.
const catalog = await fetch('models.json').then((r) => r.json());
const params = new URLSearchParams(location.search);
const backend = params.get('backend') || 'auto';
$('backend').value = backend;
$('backend').onchange = () => { params.set('backend', $('backend').value); location.search = params; };

const streamer = new SseStreamer({ bufferSize: 1024 });
let manager = null;
let executor = null;
let memory = null;
const history = [];
let task = null;
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
try {
  manager = await ModelManager.create({ streamer, backend, catalog });
} catch (err) {
  showError(err);
  document.body.dataset.ready = 'true';
  throw err;
}
executor = new TaskExecutor(manager);
memory = manager.memoryManager;
window.hearth = { streamer, manager, executor, memory };
$('device').textContent = `${manager.backend}${memory.adapter?.device ? ` · ${memory.adapter.device}` : ''} · budget ${mb(memory.budget.bytes)} (${memory.budget.explanation})`;

$('check').disabled = false;
$('check').onclick = async () => {
  const r = await checkDevice(manager.backend, 64, 512, 64);
  streamer.streamInfo(`Matmul self-check on ${manager.backend}: relative L2 error ${r.relL2Error.toExponential(2)} (${r.relL2Error < 1e-4 ? 'pass' : 'FAIL'}).`);
};

$('low-vram').onchange = () => {
  memory.setSimulationLowVRAM($('low-vram').checked);
  streamer.streamInfo($('low-vram').checked
    ? 'Simulating a low-VRAM device (256 MB): canLoadModel now answers for that budget.'
    : 'Low-VRAM simulation off.');
  refresh();
};

// --- Memory gauge: the budget as a bar, one segment per resident model. ------------------------
const COLORS = ['#f08a3c', '#8ab4f8', '#7bd88f', '#c792ea', '#ffd166', '#ef476f'];
function drawGauge() {
  const s = memory.getStats();
  const bar = $('gauge-bar');
  bar.replaceChildren();
  const budget = Math.max(s.budgetBytes, 1);
  let registered = 0;
  s.loaded.forEach((m, i) => {
    registered += m.bytes;
    const seg = el('div', { class: 'seg', title: `${m.key}: ${mb(m.bytes)}${m.pinned ? ' (pinned)' : ''}` });
    seg.style.width = `${Math.min(100, (100 * m.bytes) / budget)}%`;
    seg.style.background = COLORS[i % COLORS.length];
    seg.append(el('span', { text: m.key }));
    bar.append(seg);
  });
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
      const b = el('button', { text: label, class: cls });
      b.dataset.key = r.key;
      b.dataset.action = label.toLowerCase();
      b.onclick = () => f(r.key);
      buttons.append(b);
    };
    if (r.key !== current) act('Load', switchTo);
    if (!r.loaded) act('Preload', preload, 'secondary');
    if (r.loaded) act('Unload', unload, 'secondary');
    const tr = el('tr', {},
      el('td', {}, el('strong', { text: r.key }), r.key === 'gemma-3-270m' ? el('span', { class: 'pill', text: 'default' }) : '', el('div', { class: 'muted', text: r.description || '' })),
      el('td', { text: `${r.quant} · ${mb(r.fileBytes)}` }),
      el('td', { text: `${mb(r.fit.requiredBytes)}${r.exact || r.requiredBytes ? '' : ' (est.)'}`, title: r.exact ? 'exact, from the file header' : r.requiredBytes ? 'from the catalog' : 'estimated from the file size until the header is read' }),
      el('td', {}, status, why),
      el('td', {}, buttons));
    tr.dataset.key = r.key;
    body.append(tr);
  }
  $('prompt').disabled = !current;
  $('send').disabled = !current || task !== null;
  $('chat-model').textContent = current ? `Chatting with ${current}` : 'Load a model to chat.';
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
  box.append(el('p', { text: err instanceof HearthError ? `${err.name}: ${err.message}` : String(err) }));
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

async function run(label, key, f) {
  $('model-error').hidden = true;
  loadAbort = new AbortController();
  $('cancel-load').disabled = false;
  try {
    await f(loadAbort.signal);
  } catch (err) {
    if (!(err instanceof CancelledError)) showError(err);
  } finally {
    $('cancel-load').disabled = true;
    $('progress-box').hidden = true;
    refresh();
  }
}
const switchTo = (key) => run('switch', key, (signal) => manager.switchModel(key, { signal }).then(() => {
  history.length = 0;
  $('chat').replaceChildren();
}));
const preload = (key) => run('preload', key, (signal) => manager.preload(key, { signal }));
const unload = (key) => run('unload', key, () => manager.unload(key));
$('cancel-load').onclick = () => loadAbort?.abort();

// --- Chat through the TaskExecutor: messages with the model's template, tokens as they come. ---
function bubble(role, text) {
  const div = el('div', { class: `msg ${role}`, text }); // model output is text, never HTML
  $('chat').append(div);
  $('chat').scrollTop = $('chat').scrollHeight;
  return div;
}

async function send() {
  const text = $('prompt').value.trim();
  const key = manager.currentModel;
  if (!text || !key || task) return;
  $('prompt').value = '';
  bubble('user', text);
  history.push({ role: 'user', content: text });
  const out = bubble('assistant', '');
  $('send').disabled = true; $('stop').disabled = false;
  task = executor.enqueue({
    modelKey: key,
    messages: history.slice(),
    params: { maxTokens: Number($('max-tokens').value), temperature: Number($('temperature').value), topP: Number($('top-p').value) },
  });
  try {
    for await (const t of task) { out.textContent += t.text; $('chat').scrollTop = $('chat').scrollHeight; }
    const r = await task.result;
    history.push({ role: 'assistant', content: r.text });
    $('chat-stats').textContent = `${r.generatedTokens} tokens · TTFT ${(r.ttftMs / 1000).toFixed(2)} s · ${r.decodeTokensPerSecond.toFixed(2)} tok/s · prefill ${r.prefillTokensPerSecond.toFixed(1)} tok/s · ${r.backend}`;
  } catch (err) {
    if (err instanceof CancelledError) {
      history.push({ role: 'assistant', content: out.textContent });
      $('chat-stats').textContent = 'Stopped.';
    } else {
      showError(err);
    }
  } finally {
    task = null;
    $('send').disabled = false; $('stop').disabled = true;
  }
}
$('send').onclick = send;
$('prompt').onkeydown = (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); } };
$('stop').onclick = () => task?.cancel();

refresh();
document.body.dataset.ready = 'true';
streamer.streamInfo(`Hearth ready on ${manager.backend}. Load ${'gemma-3-270m'} (the default) or any model that fits.`);
if (params.get('autoload') !== null) switchTo(params.get('autoload') || 'gemma-3-270m');
