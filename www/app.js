// The demo imports Hearth exactly as an npm user would: `import ... from 'hearth'`
// resolves (through the import map) to the package installed in node_modules.
import init, { SseStreamer, initDevice, checkDevice, version, HearthError, GgufFile, LanguageModel, CancelledError } from 'hearth';

const $ = (id) => document.getElementById(id);

await init();
$('version').textContent = `v${version()}`;

const streamer = new SseStreamer({ bufferSize: 512 });
window.hearth = { streamer }; // for the console and the page tests

// The seed's UI pattern: one subscriber renders every event. Text only, never HTML.
let count = 0;
streamer.subscribe((e) => {
  count += 1;
  $('event-count').textContent = `${count} events`;
  const li = document.createElement('li');
  li.className = `t-${e.type}`;
  const id = document.createElement('span');
  id.className = 'id';
  id.textContent = String(e.id);
  const type = document.createElement('span');
  type.className = 'type';
  type.textContent = e.type;
  const msg = document.createElement('span');
  msg.className = 'msg';
  msg.textContent = describe(e);
  li.append(id, type, msg);
  $('log').prepend(li);
});

function describe(e) {
  switch (e.type) {
    case 'info': return e.data;
    case 'error': return `${e.data.name}: ${e.data.message}`;
    case 'progress': return `${e.data.phase} ${mb(e.data.loaded)}${e.data.total !== undefined ? ` of ${mb(e.data.total)} (${e.data.percent.toFixed(1)}%)` : ''}`;
    case 'metrics': return `used ${mb(e.data.usedBytes)}${e.data.budgetBytes !== undefined ? ` of ${mb(e.data.budgetBytes)}` : ''}`;
    case 'token': return JSON.stringify(e.data.text);
    case 'done': return `${e.data.generatedTokens} tokens, ${e.data.decodeTokensPerSecond.toFixed(1)} tok/s`;
  }
}
const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;

// The same events as SSE bytes, the way a Service Worker would relay them.
(async () => {
  const reader = streamer.eventStream({ replay: 512 }).pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const pre = $('sse');
    pre.textContent = (pre.textContent + value).slice(-6000);
    pre.scrollTop = pre.scrollHeight;
  }
})();

async function start(backend) {
  $('device-error').hidden = true;
  for (const b of ['init-webgpu', 'init-cpu']) $(b).disabled = true;
  try {
    const info = await initDevice(streamer, backend);
    const dl = $('device-info');
    dl.replaceChildren();
    const rows = [['backend', info.kind]];
    if (info.adapter) {
      rows.push(['adapter', info.adapter.name || '(unnamed)'], ['vendor', info.adapter.vendor || '—'],
        ['graphics API', info.adapter.backend], ['max storage binding', mb(info.adapter.maxStorageBufferBindingSize)],
        ['max buffer', mb(info.adapter.maxBufferSize)], ['shader-f16', info.adapter.shaderF16 ? 'yes' : 'no']);
    }
    for (const [k, v] of rows) {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v;
      dl.append(dt, dd);
    }
    $('check').disabled = false;
    $('check').onclick = async () => {
      const r = await checkDevice(info.kind, 64, 512, 64);
      streamer.streamInfo(`Matmul self-check on ${info.kind}: relative L2 error ${r.relL2Error.toExponential(2)} (${r.relL2Error < 1e-4 ? 'pass' : 'FAIL'}).`);
    };
  } catch (err) {
    $('device-error').hidden = false;
    $('device-error').textContent = err instanceof HearthError ? `${err.name}: ${err.message}` : String(err);
    for (const b of ['init-webgpu', 'init-cpu']) $(b).disabled = false;
  }
}

// --- Model and chat -------------------------------------------------------------------
// The models `./run` fetched into models/, served under /models. gemma-3-270m is the default.
const MODELS = {
  'gemma-3-270m': { url: '/models/gemma-3-270m-q4_k_m.gguf', label: 'Gemma 3 270M (Q4_K_M, 253 MB)' },
  'smollm2-135m': { url: '/models/smollm2-135m-instruct-q4_1.gguf', label: 'SmolLM2 135M Instruct (Q4_1, 98 MB)' },
  'qwen2.5-0.5b': { url: '/models/qwen2.5-coder-0.5b-instruct.gguf', label: 'Qwen2.5 Coder 0.5B Instruct (Q5_0/Q8_0, 489 MB)' },
};
for (const [key, m] of Object.entries(MODELS)) {
  const o = document.createElement('option');
  o.value = key; o.textContent = m.label;
  $('model-key').append(o);
}
let model = null;
const history = [];
let abort = null;

function showError(where, err) {
  $(where).hidden = false;
  $(where).textContent = err instanceof HearthError ? `${err.name}: ${err.message}` : String(err);
}

$('load').onclick = async () => {
  const key = $('model-key').value;
  $('model-error').hidden = true;
  $('load').disabled = true;
  model?.dispose();
  model = null;
  const bar = $('load-progress');
  bar.hidden = false; bar.value = 0;
  try {
    streamer.streamInfo(`Checking ${key}...`, key);
    const file = await GgufFile.fromUrl(MODELS[key].url);
    model = await LanguageModel.load(file, streamer, {
      key, backend: $('model-backend').value, contextLength: 2048,
      onProgress: (p) => { bar.value = p.percent; $('load-status').textContent = `${p.phase}: ${mb(p.loaded)} of ${mb(p.total)} (${p.percent.toFixed(0)}%)`; },
    });
    const i = model.info;
    $('load-status').textContent = `${key} on ${i.backend}: ${mb(i.weightBytes)} of weights, context ${i.contextLength}.`;
    history.length = 0;
    $('chat').replaceChildren();
    for (const id of ['prompt', 'send']) $(id).disabled = false;
    $('unload').disabled = false;
  } catch (err) {
    showError('model-error', err);
  } finally {
    $('load').disabled = false;
    bar.hidden = true;
  }
};

$('unload').onclick = () => {
  model?.dispose();
  model = null;
  streamer.streamInfo('Model unloaded; its memory is returned.');
  for (const id of ['prompt', 'send', 'unload']) $(id).disabled = true;
};

function bubble(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text; // model output is text, never HTML
  $('chat').append(div);
  return div;
}

$('send').onclick = async () => {
  const text = $('prompt').value.trim();
  if (!text || !model) return;
  $('prompt').value = '';
  bubble('user', text);
  history.push({ role: 'user', content: text });
  const out = bubble('assistant', '');
  abort = new AbortController();
  $('send').disabled = true; $('stop').disabled = false;
  try {
    const r = await model.generate(history, {
      maxTokens: Number($('max-tokens').value), temperature: Number($('temperature').value),
      topP: Number($('top-p').value), signal: abort.signal,
      onToken: (t) => { out.textContent += t.text; },
    });
    history.push({ role: 'assistant', content: r.text });
    $('chat-stats').textContent = `${r.generatedTokens} tokens · TTFT ${(r.ttftMs / 1000).toFixed(2)} s · ${r.decodeTokensPerSecond.toFixed(2)} tok/s · ${r.backend}`;
  } catch (err) {
    if (err instanceof CancelledError) {
      history.push({ role: 'assistant', content: out.textContent });
      $('chat-stats').textContent = 'Stopped.';
    } else {
      showError('model-error', err);
    }
  } finally {
    $('send').disabled = false; $('stop').disabled = true;
  }
};
$('stop').onclick = () => abort?.abort();
$('load').disabled = false;

$('init-webgpu').onclick = () => start('auto');
$('init-cpu').onclick = () => start('cpu');
// The buttons come alive only once the module is ready.
for (const b of ['init-webgpu', 'init-cpu']) $(b).disabled = false;
document.body.dataset.ready = 'true';
streamer.streamInfo('Hearth loaded. Initialise a device to begin.');
