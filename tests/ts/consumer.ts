// Compiled with `tsc --strict` against pkg/hearth.d.ts by `./run test`. It never
// runs: it proves that a TypeScript user gets precise types, and the
// `@ts-expect-error` lines prove misuse is rejected (they fail if a type is `any`).
import init, {
  SseStreamer,
  initDevice,
  checkDevice,
  version,
  HearthError,
  InvalidInputError,
  ModelLoadError,
  type HearthEvent,
  type DeviceInfo,
  type MatmulCheck,
  type ProgressData,
  ModelManager,
  TaskExecutor,
  CancelledError,
  DeviceLostError,
  destroyDevice,
  type Suggestion,
  type CatalogRow,
  type LoadedModelInfo,
  type PendingTask,
  type TaskResult,
  type ModelInfo,
  type TokenData,
  type StopReason,
  openai,
  type ChatCompletion,
  type ChatCompletionChunk,
  type Completion,
  type FinishReason,
  type OpenAIApi,
} from '@hearth-llm/hearth';

// Worker mode: the same types as the main-thread manager.
export async function inWorker(own: Worker): Promise<void> {
  const manager: ModelManager = await ModelManager.create({ worker: true, backend: 'cpu' });
  const mine: ModelManager = await ModelManager.create({ worker: own });
  const where: boolean = manager.inWorker && mine.inWorker;
  void where;
  const handle = new TaskExecutor(manager).enqueue({ prompt: 'Hi', params: { maxTokens: 4 } });
  for await (const t of handle) void t.text;
  const done: Promise<void> = manager.terminate();
  await done;
  // @ts-expect-error `worker` is true or a Worker
  await ModelManager.create({ worker: 'yes' });
}

// The ModelManager / TaskExecutor surface, as the ModelManager v3.1 design's app uses it.
export async function managed(): Promise<void> {
  const manager: ModelManager = await ModelManager.create({ backend: 'auto', contextLength: 1024, autoFallback: true });
  manager.sseStreamer.subscribe((e) => { if (e.type === 'progress') void e.data.percent; });
  const ready: ModelInfo = await manager.init('gemma-3-270m');
  const ac = new AbortController();
  await manager.switchModel('smollm2-135m', { signal: ac.signal });
  await manager.preload('qwen2.5-0.5b');
  const unloaded: boolean = await manager.unload('qwen2.5-0.5b');
  const current: string | undefined = manager.currentModel;
  const isReady: boolean = manager.isReady;
  const rows: CatalogRow[] = manager.catalog();
  const fits: boolean = rows[0].fit.can;
  const loaded: LoadedModelInfo[] = manager.loadedModels();
  manager.registerModel({ key: 'mine', url: '/m.gguf', arch: 'llama', quant: 'Q4_0', fileBytes: 1, contextLength: 2048 });
  const can = manager.canLoadModel('mine');
  const sug: Suggestion[] = can.suggestions;
  manager.memoryManager.setSimulationLowVRAM(true);
  // @ts-expect-error a key is a string
  manager.switchModel(42);

  const executor = new TaskExecutor(manager);
  const handle = executor.enqueue({ modelKey: 'smollm2-135m', messages: [{ role: 'user', content: 'Hi' }], params: { maxTokens: 8 }, priority: 1 });
  for await (const t of handle) {
    const tok: TokenData = t;
    void tok.text;
  }
  try {
    const r: TaskResult = await handle.result;
    void r.taskId; void r.decodeTokensPerSecond;
    // One vocabulary: a result's stopReason is a `done` event's.
    const reason: StopReason = r.stopReason;
    if (reason === 'length' || reason === 'eos' || reason === 'stop' || reason === 'cancelled') void reason;
    // @ts-expect-error the old `done` names are gone
    const old: StopReason = 'maxTokens';
    void old;
  } catch (e) {
    if (e instanceof CancelledError || e instanceof DeviceLostError) void e.taskId;
  }
  const waiting: PendingTask[] = executor.pending();
  const cancelled: boolean = executor.cancel(handle.id);
  const gone: boolean = destroyDevice();
  void ready; void unloaded; void current; void isReady; void fits; void loaded; void sug; void waiting; void cancelled; void gone;
}

export async function main(): Promise<void> {
  await init();
  const v: string = version();
  const streamer = new SseStreamer({ bufferSize: 128 });

  // The demo's UI pattern.
  const statusBar = { text: v };
  const unsubscribe: () => void = streamer.subscribe((e) => {
    if (e.type === 'info') statusBar.text = e.data; // narrowed to string
    if (e.type === 'progress') {
      const p: ProgressData = e.data;
      const pct: number | undefined = p.percent;
      statusBar.text = `${p.phase} ${p.loaded}/${p.total ?? '?'} ${pct ?? ''}`;
    }
    if (e.type === 'error') statusBar.text = `${e.data.name}: ${e.data.message}`;
    if (e.type === 'done') statusBar.text = `${e.data.decodeTokensPerSecond} tok/s (${e.data.stopReason}, ${e.data.cachedTokens} cached)`;
    const id: number = e.id;
    const key: string | undefined = e.modelKey;
    void id; void key;
  }, { replay: 10 });
  unsubscribe();

  streamer.addEventListener('metrics', (ev: CustomEvent<HearthEvent>) => {
    if (ev.detail.type === 'metrics') statusBar.text = String(ev.detail.data.usedBytes);
  });
  const target: EventTarget = streamer.events;
  void target;

  const id: number = streamer.streamInfo('Checking memory for gemma-3-270m...', 'gemma-3-270m');
  streamer.streamProgress({ phase: 'download', loaded: 10, total: 100 });
  streamer.streamMetrics({ usedBytes: 1, budgetBytes: 2 });
  streamer.streamToken({ text: 'a', tokenId: 1, index: 0 });
  streamer.streamDone({ text: 'a', promptTokens: 1, generatedTokens: 1, ttftMs: 1, prefillTokensPerSecond: 1, decodeTokensPerSecond: 1, stopReason: 'eos' });
  streamer.streamError(new Error('x'));
  const events: HearthEvent[] = streamer.replay(5);
  const later: HearthEvent[] = streamer.since(id);
  const stream: ReadableStream<Uint8Array> = streamer.eventStream({ lastEventId: id });
  const frame: string = SseStreamer.encodeFrame({ event: 'info', data: 'a\nb' });
  const frame2: string = SseStreamer.toSseFrame(events[0]);
  void later; void stream; void frame; void frame2;

  const info: DeviceInfo = await initDevice(streamer, 'auto');
  if (info.adapter) {
    const limit: number = info.adapter.maxStorageBufferBindingSize;
    void limit;
  }
  const check: MatmulCheck = await checkDevice('webgpu', 8, 8, 8);
  void check.relL2Error;

  try {
    new SseStreamer({ bufferSize: 0 });
  } catch (e) {
    if (e instanceof InvalidInputError) {
      const code: string = e.code;
      void code;
    }
    if (e instanceof ModelLoadError) {
      const s: Suggestion[] | undefined = e.suggestions;
      const first: string | undefined = s?.[0]?.key;
      const need: number | undefined = e.requiredBytes;
      void first; void need;
    }
    const base: boolean = e instanceof HearthError && e instanceof Error;
    void base;
  }

  // @ts-expect-error: 'teleport' is not a load phase
  streamer.streamProgress({ phase: 'teleport', loaded: 1 });
  // @ts-expect-error: loaded is required
  streamer.streamProgress({ phase: 'upload' });
  // @ts-expect-error: not an event type
  streamer.addEventListener('nope', () => {});
  // @ts-expect-error: not a backend
  await initDevice(streamer, 'cuda');
  streamer.subscribe((e) => {
    // @ts-expect-error: an info event's data is a string, not an object
    void e.data.message;
  });
}

// The OpenAI-style API: stream and non-stream, chat and plain continuation.
export async function openaiStyle(executor: TaskExecutor): Promise<void> {
  const ac = new AbortController();
  const reply: ChatCompletion = await executor.chat.completions.create({
    model: 'smollm2-135m',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
    max_tokens: 32, temperature: 0, top_p: 1, stop: ['\n\n'], seed: 1, signal: ac.signal, priority: 2,
  });
  const content: string = reply.choices[0].message.content;
  const finish: FinishReason = reply.choices[0].finish_reason;
  const cached: number = reply.usage.prompt_tokens_details.cached_tokens;
  void content; void finish; void cached;
  const chunks: AsyncIterable<ChatCompletionChunk> = await executor.chat.completions.create({
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of chunks) {
    const delta: string | undefined = chunk.choices[0]?.delta.content;
    const total: number | undefined = chunk.usage?.total_tokens;
    void delta; void total;
  }
  const text: Completion = await executor.completions.create({ prompt: 'Once upon a time', max_tokens: 8 });
  void text.choices[0].text;
  const streamed: AsyncIterable<Completion> = await executor.completions.create({ prompt: 'Once', stream: true });
  for await (const c of streamed) void c.choices[0]?.text;
  // Any executor-like object (a worker proxy) gets the same API.
  const api: OpenAIApi = openai(executor);
  void api.chat.completions;
  // @ts-expect-error messages are required
  await executor.chat.completions.create({ max_tokens: 8 });
  // @ts-expect-error not a role
  await executor.chat.completions.create({ messages: [{ role: 'wizard', content: 'x' }] });
  // @ts-expect-error a non-streamed completion is not iterable
  for await (const c of await executor.chat.completions.create({ messages: [] })) void c;
}
