// The smallest app a web developer would write: Hearth by its npm name, one model, one answer.
// The page test chooses the model, the backend and the mode through the query string
// (`?url=/models/x.gguf&arch=llama&quant=Q4_1&bytes=N&backend=cpu&tokens=8&worker=1`) and reads
// the outcome from `window.outcome` once `body[data-state]` is `done` or `error`.
import init, { ModelManager, SseStreamer, TaskExecutor, HearthError } from '@hearth-llm/hearth';
import type { HearthEvent, ModelManagerOptions, TaskResult } from '@hearth-llm/hearth';

interface Outcome {
  result?: TaskResult;
  text?: string;
  ids: number[];
  backend?: string;
  infos: string[];
  crossOriginIsolated: boolean;
  error?: { name: string; code?: string; message: string };
}

const q = new URLSearchParams(location.search);
const status = document.getElementById('status')!;
const output = document.getElementById('output')!;
const outcome: Outcome = { infos: [], ids: [], crossOriginIsolated: self.crossOriginIsolated };
(window as unknown as { outcome: Outcome }).outcome = outcome;

async function main(): Promise<void> {
  await init();
  const streamer = new SseStreamer();
  streamer.subscribe((e: HearthEvent) => {
    if (e.type === 'info') {
      outcome.infos.push(e.data);
      status.textContent = e.data;
    }
  });
  const options: ModelManagerOptions = {
    streamer,
    backend: q.get('backend') === 'webgpu' ? 'webgpu' : 'cpu',
    cache: false,
    catalog: [{
      key: 'model',
      url: q.get('url') ?? '/models/smollm2-135m-instruct-q4_1.gguf',
      arch: q.get('arch') ?? 'llama',
      quant: q.get('quant') ?? 'Q4_1',
      fileBytes: Number(q.get('bytes') ?? 98362432),
      contextLength: 256,
    }],
  };
  // Worker mode is this one option; the rest of the app is the same.
  const manager = await ModelManager.create(q.get('worker') === '1' ? { ...options, worker: true } as ModelManagerOptions : options);
  await manager.init('model');
  outcome.backend = manager.backend;
  const executor = new TaskExecutor(manager);
  const handle = executor.enqueue({ prompt: q.get('prompt') ?? 'Once upon a time', params: { maxTokens: Number(q.get('tokens') ?? 8) } });
  let text = '';
  for await (const t of handle) {
    text += t.text;
    outcome.ids.push(t.tokenId);
    output.textContent = text;
  }
  outcome.result = await handle.result;
  outcome.text = text;
}

main().then(
  () => { document.body.dataset.state = 'done'; },
  (e: unknown) => {
    outcome.error = e instanceof HearthError
      ? { name: e.name, code: e.code, message: e.message }
      : { name: String((e as Error)?.name ?? 'Error'), message: String((e as Error)?.message ?? e) };
    status.textContent = `${outcome.error.name}: ${outcome.error.message}`;
    document.body.dataset.state = 'error';
  },
);
