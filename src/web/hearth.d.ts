/** The kinds of status event; also the DOM event types and SSE `event:` names. */
export type HearthEventType = 'info' | 'error' | 'progress' | 'metrics' | 'token' | 'done';

/** Which stage of getting a model onto the GPU a progress event is about. */
export type LoadPhase = 'download' | 'cache' | 'upload' | 'ready';

export interface ErrorData {
  /** The JS error class name, e.g. `ModelLoadError`. */
  name: string;
  message: string;
  stack?: string;
  /** Hearth's stable error code, e.g. `NO_ADAPTER`. */
  code?: string;
}

export interface ProgressData {
  phase: LoadPhase;
  /** Bytes done in this phase. */
  loaded: number;
  /** Bytes in this phase, when known. */
  total?: number;
  /** `loaded / total` in percent (0-100), when the total is known. */
  percent?: number;
}

export interface ProgressInput {
  phase: LoadPhase;
  loaded: number;
  total?: number | null;
}

export interface MetricsData {
  usedBytes: number;
  reservedBytes?: number;
  budgetBytes?: number;
  availableBytes?: number;
  usagePercent?: number;
  loadedModels?: number;
}

export interface TokenData {
  /** Decoded text of the token; complete UTF-8 only, so possibly empty. */
  text: string;
  tokenId: number;
  /** Position of the token in the answer, from 0. */
  index: number;
}

/**
 * Why generation stopped, in results and `done` events alike: `'eos'` an end-of-sequence token,
 * `'stop'` a stop string, `'length'` `maxTokens` reached, `'cancelled'` stopped by the caller.
 */
export type StopReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface DoneData {
  text: string;
  promptTokens: number;
  /** Of `promptTokens`, how many the model's KV cache already held (not evaluated again). */
  cachedTokens: number;
  generatedTokens: number;
  ttftMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  stopReason: StopReason;
}

/** What `SseStreamer.streamDone` takes: a `DoneData` whose `cachedTokens` may be left out (0). */
export type DoneInput = Omit<DoneData, 'cachedTokens'> & { cachedTokens?: number };

interface HearthEventBase {
  /** Strictly increasing per streamer, from 1. */
  id: number;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  modelKey?: string;
}

/** One status event: the `detail` of DOM events, the argument of `subscribe` callbacks, and the SSE `data:`. */
export type HearthEvent =
  | (HearthEventBase & { type: 'info'; data: string })
  | (HearthEventBase & { type: 'error'; data: ErrorData })
  | (HearthEventBase & { type: 'progress'; data: ProgressData })
  | (HearthEventBase & { type: 'metrics'; data: MetricsData })
  | (HearthEventBase & { type: 'token'; data: TokenData })
  | (HearthEventBase & { type: 'done'; data: DoneData });

export type HearthEventListener = (event: CustomEvent<HearthEvent>) => void;

export interface SseStreamerOptions {
  /** How many past events `replay` keeps (default 256, at most 65536). */
  bufferSize?: number;
}

export interface ReplayOptions {
  /** Deliver the last `replay` buffered events first. */
  replay?: number;
  /** Deliver the buffered events after this id first (like SSE's `Last-Event-ID`). */
  lastEventId?: number;
}

export interface SseFrame {
  data: string;
  event?: string;
  id?: string;
  retry?: number;
}

export type BackendPreference = 'auto' | 'webgpu' | 'cpu';

export interface AdapterInfo {
  name: string;
  vendor: string;
  architecture: string;
  description: string;
  backend: string;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  shaderF16: boolean;
  /**
   * The device has WebGPU's `subgroups` feature (Hearth asks for it when the adapter offers it),
   * with these subgroup sizes; `null` without it.
   */
  subgroups: { minSize: number; maxSize: number } | null;
  /** The adapter in use is a fallback (software) adapter, as WebGPU's `isFallbackAdapter` says. */
  isFallbackAdapter: boolean;
}

export interface DeviceInfo {
  kind: 'webgpu' | 'cpu';
  adapter: AdapterInfo | null;
}

export interface MatmulCheck {
  m: number;
  k: number;
  n: number;
  maxAbsError: number;
  relL2Error: number;
}

export interface OpenOptions {
  /** Aborting rejects with `CancelledError` and stops the download. */
  signal?: AbortSignal;
  /** Byte progress while downloading, at most once per percent. */
  onProgress?: (progress: ProgressData) => void;
}

export type ReadOptions = OpenOptions;

export interface EncodeOptions {
  /** Add BOS/EOS as the model's metadata asks (default true). */
  addSpecial?: boolean;
  /** Turn special-token text such as `<|im_start|>` into its token (default false). */
  parseSpecial?: boolean;
}

export interface TensorInfo {
  name: string;
  /** The ggml block type, e.g. `Q4_K`, `Q8_0`, `F32`. */
  type: string;
  /** Dimensions in ggml order (the contiguous one first). */
  dims: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  /** Bytes of block data. */
  size: number;
}

export type MetadataValue = number | bigint | string | boolean | MetadataValue[];

export interface LoadProgress {
  phase: LoadPhase;
  loaded: number;
  total: number;
  percent: number;
}

export interface LoadOptions {
  /** 'auto' (default: WebGPU, else the CPU, said on the status stream), 'webgpu' or 'cpu'. */
  backend?: BackendPreference;
  /** Positions the KV cache holds (default min(2048, the model's training context)). */
  contextLength?: number;
  /** The model's name in status events (default: the architecture). */
  key?: string;
  /**
   * The WebGPU kernel family, for testing: 'auto' (default: the barrier-free row kernels on a
   * software adapter; on a GPU subgroup reductions where the device has `subgroups`, else
   * workgroup reductions), 'subgroup', 'portable', 'rows' or 'f16' (a prompt's quantized weights
   * held in f16 tiles, exactly, with f32 arithmetic; decoding as 'subgroup' or 'portable'; never
   * chosen by 'auto'). Forcing
   * 'subgroup' on a device without `subgroups`, or 'f16' without `shader-f16`, rejects with
   * `InvalidInputError` naming the feature. The CPU ignores it.
   */
  kernels?: 'auto' | 'subgroup' | 'portable' | 'rows' | 'f16';
  /**
   * For testing: whether WebGPU records a decode step once and replays it for later tokens
   * (default: true on a GPU, false on a software adapter, where replaying is slower). `true` on
   * a device that cannot bind the buffer it needs rejects with `InvalidInputError` (field
   * `decodeGraphs`). The CPU ignores it.
   */
  decodeGraphs?: boolean;
  /**
   * How the KV cache stores keys and values: 'f32' (default) or 'f16' (half the cache's
   * memory, counted so in `info.residentBytes` and by the MemoryManager), on the CPU engine and
   * on WebGPU (packed halves; no `shader-f16` needed). Any other value rejects with
   * `InvalidInputError` (field `kvCache`), and so does 'f16' on WebGPU for a model whose cache
   * row (KV heads x head size) is odd.
   */
  kvCache?: 'f32' | 'f16';
  /**
   * Threads the CPU engine computes on, 1 to 16 (default `navigator.hardwareConcurrency`, at
   * most 8). More than 1 needs a cross-origin isolated page (COOP/COEP headers): the large matrix
   * products are then split across shard Workers the model starts and terminates with itself;
   * elsewhere the engine runs on one thread and says why on the status stream. Outside 1..16:
   * `InvalidInputError`. WebGPU ignores it.
   */
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (progress: LoadProgress) => void;
}

export interface ModelInfo {
  key: string;
  architecture: string;
  /** 'cpu' or 'webgpu: <adapter>'. */
  backend: string;
  adapter: string | null;
  contextLength: number;
  nVocab: number;
  nLayer: number;
  /** Device bytes of the weights, as laid out for the kernels. */
  weightBytes: number;
  /** Device bytes the model's backend holds (weights, KV cache, buffers). */
  residentBytes: number;
  fileBytes: number;
  /** Threads the engine computes on (the CPU engine's; 1 on WebGPU). */
  threads: number;
  /**
   * Whether the GPU records the model's decode step once and replays it for every later token
   * (see `LoadOptions.decodeGraphs`); false on the CPU.
   */
  decodeGraphs: boolean;
}

export interface GeneratedToken {
  text: string;
  /** null for the final flush of held-back text. */
  tokenId: number | null;
  index: number;
}

export interface GenerateOptions {
  /** Default 256. */
  maxTokens?: number;
  /** 0 (default) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  repeatLastN?: number;
  /** Same seed and settings, same text. Random when absent. */
  seed?: number;
  stop?: string[];
  /** Treat a string input as one user message in the model's chat template. */
  chat?: boolean;
  ignoreEos?: boolean;
  /**
   * Keep the part of the KV cache the prompt shares with the previous generation's prompt and
   * answer, and evaluate only the rest (default true): the next turn of a chat prefills only the
   * new tokens. `false` evaluates the whole prompt.
   */
  cachePrompt?: boolean;
  signal?: AbortSignal;
  /** Return false to stop after this token. */
  onToken?: (token: GeneratedToken) => boolean | void;
}

export interface GenerationResult {
  text: string;
  promptIds: number[];
  generatedIds: number[];
  promptTokens: number;
  /** Prompt tokens served from the KV cache of the previous generation (not evaluated again). */
  cachedTokens: number;
  generatedTokens: number;
  stopReason: StopReason;
  ttftMs: number;
  /** Over the evaluated prompt tokens (`promptTokens - cachedTokens`). */
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  backend: string;
}

/** What `LanguageModel.stream` returns: `for await (const t of model.stream(p)) ...`. */
export interface TokenStream extends AsyncIterable<GeneratedToken> {
  /** The whole generation's result (rejects like `generate`). */
  result: Promise<GenerationResult>;
}

export interface LanguageModel {
  /** `generate` as an async iterator of tokens; leaving the loop early stops generation. */
  stream(input: string | ChatMessage[], options?: GenerateOptions): TokenStream;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

/** Base class of every error Hearth throws or rejects with. */
export class HearthError extends Error {
    /** A stable, machine-readable code such as `INVALID_EVENT_DATA` or `NO_ADAPTER`. */
    code: string;
    /** The catalog model the failure concerns (`ModelManager`, `TaskExecutor`). */
    modelKey?: string;
    /** On a failed load: catalog models that fit now, best (largest) first. */
    suggestions?: Suggestion[];
    /** The `TaskExecutor` task that failed. */
    taskId?: number;
}
/** A caller passed something Hearth cannot use. */
export class InvalidInputError extends HearthError {}
/** No WebGPU adapter or device could be had. */
export class GpuUnavailableError extends HearthError {}
/** A model could not be loaded. */
export class ModelLoadError extends HearthError {
  /** "Not enough VRAM (available: …, required: …)", or the limit that bites. */
  reason?: string;
  requiredBytes?: number;
  availableBytes?: number;
}
export class OutOfMemoryError extends HearthError {}
/** A model file could not be fetched or kept (`STORAGE_QUOTA`: no room in the browser's storage). */
export class DownloadError extends HearthError {
  url?: string;
  status?: number;
  /** `STORAGE_QUOTA`: the cache file, the bytes it needs and the bytes the storage has. */
  file?: string;
  requiredBytes?: number;
  availableBytes?: number;
}
export class DeviceLostError extends HearthError {}
export class CancelledError extends HearthError {
  /** A generation stopped while running: the text before the stop, and the result's counts. */
  text?: string;
  promptTokens?: number;
  cachedTokens?: number;
  generatedTokens?: number;
}
export class ModelFormatError extends HearthError {}
/**
 * A model file's bytes are not the ones its SHA-256 names (`code` `INTEGRITY_MISMATCH`): a
 * corrupted or truncated cached file, or a download that differs from the catalog's `sha256`.
 * The file was deleted and nothing was loaded; loading again downloads it anew.
 */
export class IntegrityError extends HearthError {
  /** The cache's file name. */
  file?: string;
  expectedSha256?: string;
  actualSha256?: string;
  expectedBytes?: number;
  actualBytes?: number;
}
/**
 * The GPU reported an error no error scope caught during a generation or a load (`code`
 * `GPU_ERROR`: a validation or internal error; an uncaptured out-of-memory error is an
 * `OutOfMemoryError` with `code` `OUT_OF_MEMORY`). That call failed; the module and the other
 * models keep working. The same error goes out as an `error` event on the status stream.
 */
export class GpuError extends HearthError {
  /** `validation`, `outOfMemory` or `internal`. */
  gpuErrorKind?: string;
  /** The device's own message. */
  gpuMessage?: string;
}
/** Worker mode could not start its Worker (`code` `WORKER_FAILED`, `field` `worker`): a wrong script URL, a script error, WebAssembly that does not instantiate, or no answer in time. Nothing was left running. */
export class WorkerError extends HearthError {}

export interface MemoryManagerOptions {
  /** 'auto' (default), 'webgpu' or 'cpu': the page's device, shared with `LanguageModel.load`. */
  backend?: BackendPreference;
  /** A bounded allocation probe (off by default): buffers are allocated inside an out-of-memory error scope up to `capBytes` (default 2 GiB), then released; the result informs the budget. */
  probe?: boolean | { capBytes: number };
  /** System memory in GB, instead of `navigator.deviceMemory`. */
  deviceMemoryGb?: number;
}

export interface RequirementForOptions {
  /** Positions the KV cache holds (default 2048, clamped to the model's training context). */
  contextLength?: number;
}

/** What the browser says about the adapter, as the budget estimate reads it. */
export interface AdapterFacts {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** 0 on the CPU backend (no limit). */
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  deviceMemoryGb: number | null;
  probe: { allocatedBytes: number; hitOutOfMemory: boolean } | null;
}

export interface DeviceLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** Where a budget figure came from. */
export type EstimatedFrom =
  | { source: 'override' }
  | { source: 'probe' }
  | { source: 'tierTable'; tier: string }
  | { source: 'deviceMemory' }
  | { source: 'default' };

export type AdapterClass = 'cpu' | 'integrated' | 'discrete' | 'unknown';

export interface MemoryBudget {
  /** The usable budget: `rawBytes` less the safety margin. */
  bytes: number;
  rawBytes: number;
  estimatedFrom: EstimatedFrom;
  safetyMargin: number;
  adapterClass: AdapterClass;
  /** How the figure was reached, in one sentence. */
  explanation: string;
}

/** Which limit keeps a model off the device. */
export type LimitKind =
  | { kind: 'totalBudget' }
  | { kind: 'tensorOverBindingLimit'; name: string; neededBytes: number; limitBytes: number }
  | { kind: 'bufferSize'; name: string; neededBytes: number; limitBytes: number }
  | { kind: 'missingFeature'; feature: string; tensor: string | null };

export interface LimitProblem {
  limit: LimitKind;
  message: string;
}

/** What a model will occupy on the device. */
export interface Requirement {
  /** True when computed from the GGUF header. */
  exact: boolean;
  context: number;
  batch: number;
  weightBytes: number;
  kvCacheBytes: number;
  activationBytes: number;
  totalBytes: number;
  largestTensor: { name: string; bytes: number } | null;
  /** Wasm-heap bytes one tensor's upload holds at its peak (its file bytes and its device-layout copy); not part of `totalBytes`, which is device memory. */
  uploadPeakBytes: number;
  /** Reasons the model cannot be loaded on this device at any budget. */
  problems: LimitProblem[];
}

export interface Evictable {
  key: string;
  bytes: number;
  /** What unloading it and every model before it frees. */
  cumulativeBytes: number;
}

export interface CanLoadResult {
  can: boolean;
  /** e.g. "Not enough VRAM (available: 500 MB, required: 2.0 GB)". */
  reason: string;
  requiredBytes: number;
  availableBytes: number;
  budgetBytes: number;
  /** Unpinned resident models, least recently used first. */
  evictable: Evictable[];
  fitsAfterEviction: boolean;
  limit: LimitKind | null;
  simulated: boolean;
}

export interface LoadedModelEntry {
  key: string;
  bytes: number;
  /** `Date.now()` at the last use. */
  lastUsed: number | null;
  useOrder: number;
  pinned: boolean;
}

export interface MemoryStats {
  budgetBytes: number;
  estimatedFrom: EstimatedFrom;
  explanation: string;
  simulated: boolean;
  /** Measured from the allocator on WebGPU; the registered sum on the CPU. */
  usedBytes: number;
  reservedBytes: number;
  measured: boolean;
  registeredBytes: number;
  availableBytes: number;
  usagePercent: number;
  /** Least recently used first. */
  loaded: LoadedModelEntry[];
}

/** A model an app offers (`ModelManager` catalogs; JSON with these fields). */
export interface CatalogEntry {
  /** Letters, digits, '.', '_', '-'; the name status events use, e.g. 'gemma-3-270m'. */
  key: string;
  /** The GGUF file: absolute or relative to the page (Range requests are used when served). */
  url: string;
  sha256?: string;
  /** GGUF `general.architecture`: 'llama' | 'qwen2' | 'gemma3'. */
  arch: string;
  /** llama.cpp's name for the quantization, e.g. 'Q4_K_M'. */
  quant: string;
  fileBytes: number;
  contextLength: number;
  description?: string;
  /** Device bytes at context 2048 from `requirementFor`; else estimated until the header is read. */
  requiredBytes?: number;
}

/** `registerModel`'s argument: an entry whose `url` may be replaced by a user-picked `file`. */
export type CatalogEntryInput = (CatalogEntry | (Omit<CatalogEntry, 'url' | 'fileBytes'> & { url?: string; fileBytes?: number })) & { file?: Blob };

/** A catalog model that fits where another did not; best (largest) first. */
export interface Suggestion {
  key: string;
  requiredBytes: number;
  fileBytes: number;
  description: string;
}

/** `ModelManager.catalog()`: an entry and what `canLoadModel` says about it now. */
export type CatalogRow = CatalogEntry & { loaded: boolean; exact: boolean; fit: CanLoadResult };

export interface ModelManagerOptions {
  /** The status stream every step is told on (a new one by default: `manager.sseStreamer`). */
  streamer?: SseStreamer;
  /** The memory account (created on the page's device by default: `manager.memoryManager`). */
  memoryManager?: MemoryManager;
  /** 'auto' (default): WebGPU unless the adapter is a software emulation; or 'webgpu' | 'cpu'. */
  backend?: BackendPreference;
  /** Entries added to the built-in catalog (same keys replace built-in entries). */
  catalog?: CatalogEntry[] | { models: CatalogEntry[] };
  /** The KV-cache length models are loaded with (default 2048, clamped to each model's). */
  contextLength?: number;
  /** When a model cannot be loaded, load the best suggestion instead and say so (default false). */
  autoFallback?: boolean;
  /** Unload least-recently-used unpinned models to make room (default true). */
  evict?: boolean;
  /** Keep downloaded model files in the browser's model cache (OPFS) and load from it next time (default true). */
  cache?: boolean;
  /** Instead of `navigator.deviceMemory`, for the budget estimate. */
  deviceMemoryGb?: number;
  /**
   * Worker mode: run every model, tokenizer and generation in a dedicated module Worker, so the
   * page's thread only relays events. `true` starts the package's own `hearth-worker.js`; a
   * `Worker` the app created on that script (`{ type: 'module' }`) is used as it is. The manager,
   * its `sseStreamer` (an `EventTarget` on the page), `memoryManager`, `getModel(key)` models and
   * `TaskExecutor`s keep the same API and errors. Synchronous getters read the state the worker
   * last reported, which always arrives before the event or settled promise announcing a change.
   * `memoryManager` cannot be passed (it lives on the page): give `backend`/`deviceMemoryGb`.
   * A worker that cannot start rejects with `WorkerError` `WORKER_FAILED` (`field: 'worker'`).
   */
  worker?: boolean | Worker;
}

/** A model file in the browser's model cache (`ModelManager.cachedModels()`). */
export interface CachedModel {
  key: string;
  file: string;
  bytes: number;
  /** The SHA-256 recorded when the file was stored (the catalog's, or computed for an entry without one); checked on every reuse. */
  sha256?: string;
}

export interface SwitchOptions {
  /** Aborting stops the download, frees what was uploaded, and keeps the previous model current. */
  signal?: AbortSignal;
}

/** `ModelManager.loadedModels()`: resident models, least recently used first. */
export interface LoadedModelInfo {
  key: string;
  bytes: number;
  current: boolean;
  pinned: boolean;
  lastUsed?: number;
  backend: string;
}

export interface TaskOptions {
  /** The catalog model to run on (default: the current model); switched to before the task runs. */
  modelKey?: string;
  prompt?: string;
  /** Chat messages, rendered with the model's template. */
  messages?: ChatMessage[];
  /** `generate` options: maxTokens, temperature, topK, topP, minP, repetitionPenalty, seed, stop, onToken. */
  params?: GenerateOptions;
  /** Higher runs first (default 0); first in, first out within a priority. */
  priority?: number;
  /** Aborting cancels the task (waiting: it leaves the queue; running: it stops between tokens). */
  signal?: AbortSignal;
}

export interface PendingTask {
  id: number;
  modelKey: string;
  priority: number;
}

/** A task's result: the generation plus which task and model produced it. */
export type TaskResult = GenerationResult & { taskId: number; modelKey: string };

export interface TaskHandle {
  [Symbol.asyncIterator](): AsyncIterator<TokenData>;
}

// ---- The OpenAI-style API (`executor.chat.completions.create`, `executor.completions.create`) ----

/** A chat message as OpenAI's API takes it; `developer` is read as `system`, content parts must be text. */
export interface ChatCompletionMessageParam {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string | { type: 'text'; text: string }[];
  name?: string;
}

/**
 * The parameters both endpoints read. Unsupported OpenAI parameters (`n` > 1, `logprobs`,
 * `tools`, `response_format` other than text, non-zero `frequency_penalty`/`presence_penalty`,
 * `logit_bias`) are an `InvalidInputError` whose `field` names them, as is any parameter Hearth
 * does not know. Sampling defaults are Hearth's (greedy), not OpenAI's temperature 1.
 */
export interface CompletionRequestBase {
  /** A catalog key (default: the manager's current model); an unknown key is `InvalidInputError` (`UNKNOWN_MODEL`, `field` 'model'). */
  model?: string;
  /** At least 1 (default 256). */
  max_tokens?: number | null;
  /** 0 to 2; 0 is greedy. */
  temperature?: number | null;
  /** Above 0, at most 1. */
  top_p?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  /** Aborting stops the generation: the result (or the stream's last chunk) has `finish_reason` 'abort'; a request aborted before it ran rejects with `CancelledError`. */
  signal?: AbortSignal;
  /** The task's priority (higher runs first). */
  priority?: number;
  n?: 1 | null;
  logprobs?: false | null;
  frequency_penalty?: 0 | null;
  presence_penalty?: 0 | null;
  user?: string;
  /** Hearth's own sampling parameters. */
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  ignore_eos?: boolean;
  /** Reuse the KV cache's prefix shared with the prompt (default true; llama.cpp's name). */
  cache_prompt?: boolean;
}

export interface StreamOptions {
  /** A last chunk with empty `choices` and the `usage` (every other chunk has `usage: null`). */
  include_usage?: boolean;
}

export interface ChatCompletionRequestBase extends CompletionRequestBase {
  messages: ChatCompletionMessageParam[];
  /** OpenAI's newer name for `max_tokens`. */
  max_completion_tokens?: number | null;
  response_format?: { type: 'text' };
}
export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false | null;
}
export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
  stream_options?: StreamOptions;
}
export type ChatCompletionRequest = ChatCompletionRequestNonStreaming | ChatCompletionRequestStreaming;

export interface CompletionCreateBase extends CompletionRequestBase {
  /** The text to continue (as is: no chat template). */
  prompt: string | [string];
  echo?: false | null;
}
export interface CompletionRequestNonStreaming extends CompletionCreateBase {
  stream?: false | null;
}
export interface CompletionRequestStreaming extends CompletionCreateBase {
  stream: true;
  stream_options?: StreamOptions;
}
export type CompletionRequest = CompletionRequestNonStreaming | CompletionRequestStreaming;

/** 'stop': an end-of-sequence token or a stop string; 'length': `max_tokens`; 'abort': the request's signal. */
export type FinishReason = 'stop' | 'length' | 'abort';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** `cached_tokens`: prompt tokens served from the model's KV cache (the conversation so far). */
  prompt_tokens_details: { cached_tokens: number };
  /** Hearth's timings (absent after an abort). */
  extra?: { time_to_first_token_s: number; prefill_tokens_per_s: number; decode_tokens_per_s: number };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  /** Unix seconds. */
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string };
    finish_reason: FinishReason;
    logprobs: null;
  }[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** One choice; empty in the usage chunk. The first delta has the role, the last the `finish_reason`. */
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: FinishReason | null;
    logprobs: null;
  }[];
  /** With `stream_options.include_usage`: `null`, and the usage on the last chunk. */
  usage?: CompletionUsage | null;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: FinishReason | null; logprobs: null }[];
  usage?: CompletionUsage | null;
}

export interface ChatCompletions {
  /**
   * Queues the request as a task. Rejects with `InvalidInputError` (`field` names the parameter:
   * empty `messages`, an unknown role, `max_tokens` below 1, `temperature`/`top_p` out of range,
   * unsupported parameters) before anything is queued, and with the task's errors otherwise.
   */
  create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  create(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

export interface Completions {
  /** As `chat.completions.create`, for plain text continuation (base models). */
  create(request: CompletionRequestNonStreaming): Promise<Completion>;
  create(request: CompletionRequestStreaming): Promise<AsyncIterable<Completion>>;
  create(request: CompletionRequest): Promise<Completion | AsyncIterable<Completion>>;
}

export interface OpenAIApi {
  chat: { completions: ChatCompletions };
  completions: Completions;
}

/** What `openai()` needs of an executor: a `TaskExecutor`, or a proxy with the same `enqueue`. */
export interface ExecutorLike {
  enqueue(task: TaskOptions): {
    [Symbol.asyncIterator](): AsyncIterator<{ text: string }>;
    result: Promise<TaskResult>;
    cancel(): boolean;
    modelKey?: string;
  };
}

/** The OpenAI-style API over any executor-like object (`TaskExecutor` has it as `chat` / `completions`). */
export function openai(executor: ExecutorLike): OpenAIApi;

export interface TaskExecutor {
  /** `executor.chat.completions.create(...)`: OpenAI's chat completions over this executor's tasks. */
  readonly chat: { completions: ChatCompletions };
  /** `executor.completions.create(...)`: plain continuation over this executor's tasks. */
  readonly completions: Completions;
}

// --- Worker mode (ModelManager.create({ worker })) ---
export interface ModelManager {
  /**
   * Unloads every model (its memory returned). In worker mode it then terminates the worker: calls
   * still in flight reject with `CancelledError` (`WORKER_TERMINATED`) and the manager cannot be
   * used afterwards; a main-thread manager stays usable.
   */
  terminate(): Promise<void>;
  /** Whether the models run in a Worker (`ModelManager.create({ worker })`). */
  readonly inWorker: boolean;
}
