// The demo imports Hearth exactly as an npm user would: `import ... from 'hearth'`
// resolves (through the import map) to the package installed in node_modules.
import init, { SseStreamer, initDevice, checkDevice, version, HearthError } from 'hearth';

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

$('init-webgpu').onclick = () => start('auto');
$('init-cpu').onclick = () => start('cpu');
// The buttons come alive only once the module is ready.
for (const b of ['init-webgpu', 'init-cpu']) $(b).disabled = false;
document.body.dataset.ready = 'true';
streamer.streamInfo('Hearth loaded. Initialise a device to begin.');
