// The OpenAI-style API over a TaskExecutor: `executor.chat.completions.create(...)` and
// `executor.completions.create(...)`, in the shapes of OpenAI's (and WebLLM's) chat and
// completions endpoints. A request becomes one task (`enqueue`), so priorities, model switching
// and memory management apply as to any other task.
//
// Works over any executor-like object: `enqueue({ modelKey, messages | prompt, params,
// priority, signal })` returning a handle that is an async iterable of `{ text }` tokens with a
// `result` promise (`{ text, promptTokens, cachedTokens, generatedTokens, stopReason, ttftMs,
// prefillTokensPerSecond, decodeTokensPerSecond, modelKey }`) and `cancel()`.
// `tools/finish-pkg.mjs` ships this file next to errors.js and attaches `chat` and
// `completions` getters to `TaskExecutor.prototype`; `openai(executor)` serves any other.
//
// Every request is checked before anything is queued: a bad or unsupported parameter is an
// `InvalidInputError` whose `field` names it (`messages[2].role`, `max_tokens`, `n`, ...).

import { InvalidInputError, CancelledError } from './errors.js';

/** Parameters read from both kinds of request (the rest are per endpoint, below). */
const COMMON = ['model', 'stream', 'stream_options', 'max_tokens', 'temperature', 'top_p', 'stop', 'seed', 'signal',
  'priority', 'n', 'logprobs', 'top_logprobs', 'frequency_penalty', 'presence_penalty', 'logit_bias', 'user',
  'metadata', 'store', 'service_tier', 'top_k', 'min_p', 'repetition_penalty', 'ignore_eos', 'cache_prompt'];
const CHAT = [...COMMON, 'messages', 'max_completion_tokens', 'tools', 'tool_choice', 'functions', 'function_call',
  'parallel_tool_calls', 'response_format'];
const COMPLETION = [...COMMON, 'prompt', 'echo', 'suffix', 'best_of'];
const ROLES = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

function invalid(field, message, code = 'INVALID_PARAMS') {
  const error = new InvalidInputError(message, { field });
  error.code = code;
  return error;
}

const given = (v) => v !== undefined && v !== null;

/** `value` is absent or a number in [lo, hi] (`lo` excluded when `open`). */
function checkRange(request, field, lo, hi, open = false) {
  const v = request[field];
  if (!given(v)) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v) || v > hi || (open ? v <= lo : v < lo)) {
    throw invalid(field, `\`${field}\` must be a number in ${open ? '(' : '['}${lo}, ${hi}] (got ${String(v)}).`);
  }
  return v;
}

function checkInteger(request, field, min) {
  const v = request[field];
  if (!given(v)) return undefined;
  if (!Number.isInteger(v) || v < min) {
    throw invalid(field, `\`${field}\` must be an integer of at least ${min} (got ${String(v)}).`);
  }
  return v;
}

/** A parameter Hearth does not implement: an error unless it has its neutral value. */
function unsupported(request, field, neutral, what) {
  const v = request[field];
  if (given(v) && !neutral(v)) throw invalid(field, `\`${field}\` is not supported: ${what}.`);
}

/** The checked request as a task: `{ task, stream, includeUsage }`. */
function readRequest(request, kind) {
  if (request === null || typeof request !== 'object') {
    throw invalid('request', `${kind}.create needs a request object.`, 'INVALID_OPTIONS');
  }
  const known = kind === 'chat.completions' ? CHAT : COMPLETION;
  for (const field of Object.keys(request)) {
    if (!known.includes(field)) throw invalid(field, `\`${field}\` is not a ${kind} parameter Hearth knows.`);
  }
  if (given(request.model) && typeof request.model !== 'string') {
    throw invalid('model', '`model` must be a catalog key (a string).');
  }
  unsupported(request, 'n', (v) => v === 1, 'Hearth generates one choice per request');
  unsupported(request, 'logprobs', (v) => v === false, 'no log-probabilities are returned');
  unsupported(request, 'top_logprobs', (v) => v === 0, 'no log-probabilities are returned');
  unsupported(request, 'frequency_penalty', (v) => v === 0, 'use `repetition_penalty`');
  unsupported(request, 'presence_penalty', (v) => v === 0, 'use `repetition_penalty`');
  unsupported(request, 'logit_bias', (v) => typeof v === 'object' && Object.keys(v).length === 0, 'no logit bias');
  for (const field of ['tools', 'functions']) {
    unsupported(request, field, (v) => Array.isArray(v) && v.length === 0, 'no tool calling');
  }
  unsupported(request, 'tool_choice', (v) => v === 'none', 'no tool calling');
  unsupported(request, 'function_call', (v) => v === 'none', 'no tool calling');
  unsupported(request, 'response_format', (v) => v && v.type === 'text', 'text is the only format');
  unsupported(request, 'echo', (v) => v === false, 'the prompt is not repeated');
  unsupported(request, 'suffix', (v) => v === '', 'no insertion');
  unsupported(request, 'best_of', (v) => v === 1, 'Hearth generates one choice per request');
  if (given(request.stream) && typeof request.stream !== 'boolean') throw invalid('stream', '`stream` must be a boolean.');
  const stream = request.stream === true;
  let includeUsage = false;
  if (given(request.stream_options)) {
    if (!stream) throw invalid('stream_options', '`stream_options` is only allowed with `stream: true`.');
    if (typeof request.stream_options !== 'object') throw invalid('stream_options', '`stream_options` must be an object.');
    includeUsage = request.stream_options.include_usage === true;
  }

  const params = {};
  const maxTokens = kind === 'chat.completions' && given(request.max_completion_tokens)
    ? checkInteger(request, 'max_completion_tokens', 1)
    : checkInteger(request, 'max_tokens', 1);
  if (maxTokens !== undefined) params.maxTokens = maxTokens;
  const temperature = checkRange(request, 'temperature', 0, 2);
  if (temperature !== undefined) params.temperature = temperature;
  const topP = checkRange(request, 'top_p', 0, 1, true);
  if (topP !== undefined) params.topP = topP;
  const minP = checkRange(request, 'min_p', 0, 1);
  if (minP !== undefined) params.minP = minP;
  const topK = checkInteger(request, 'top_k', 0);
  if (topK !== undefined) params.topK = topK;
  const penalty = checkRange(request, 'repetition_penalty', 0, Infinity, true);
  if (penalty !== undefined) params.repetitionPenalty = penalty;
  if (given(request.seed)) {
    if (!Number.isInteger(request.seed)) throw invalid('seed', `\`seed\` must be an integer (got ${String(request.seed)}).`);
    params.seed = request.seed;
  }
  if (given(request.stop)) {
    const stop = typeof request.stop === 'string' ? [request.stop] : request.stop;
    if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s === '')) {
      throw invalid('stop', '`stop` must be a non-empty string or an array of them.');
    }
    params.stop = stop;
  }
  for (const [field, option] of [['ignore_eos', 'ignoreEos'], ['cache_prompt', 'cachePrompt']]) {
    if (!given(request[field])) continue;
    if (typeof request[field] !== 'boolean') throw invalid(field, `\`${field}\` must be a boolean.`);
    params[option] = request[field];
  }

  const task = { params };
  if (given(request.model)) task.modelKey = request.model;
  if (given(request.priority)) {
    if (!Number.isInteger(request.priority)) throw invalid('priority', '`priority` must be an integer.');
    task.priority = request.priority;
  }
  if (given(request.signal)) task.signal = request.signal;
  if (kind === 'chat.completions') task.messages = readMessages(request.messages);
  else task.prompt = readPrompt(request.prompt);
  return { task, stream, includeUsage };
}

function readMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalid('messages', '`messages` must be a non-empty array of { role, content }.', 'INVALID_MESSAGES');
  }
  return messages.map((m, i) => {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== 'object') throw invalid(at, `\`${at}\` must be an object.`, 'INVALID_MESSAGES');
    const role = ROLES[m.role];
    if (!role) {
      throw invalid(`${at}.role`, `\`${at}.role\` must be 'system', 'developer', 'user' or 'assistant' (got ${JSON.stringify(m.role)}).`,
        'INVALID_MESSAGES');
    }
    if (given(m.tool_calls) || given(m.function_call)) {
      throw invalid(`${at}.tool_calls`, `\`${at}\`: tool calls are not supported.`, 'INVALID_MESSAGES');
    }
    let content = m.content;
    // Content parts: text only, joined.
    if (Array.isArray(content)) {
      content = content.map((part, j) => {
        if (!part || part.type !== 'text' || typeof part.text !== 'string') {
          throw invalid(`${at}.content[${j}]`, `\`${at}.content[${j}]\`: only text parts are supported.`, 'INVALID_MESSAGES');
        }
        return part.text;
      }).join('');
    }
    if (typeof content !== 'string') {
      throw invalid(`${at}.content`, `\`${at}.content\` must be a string or text parts.`, 'INVALID_MESSAGES');
    }
    return { role, content };
  });
}

function readPrompt(prompt) {
  // A one-element array is OpenAI's batch of one.
  const text = Array.isArray(prompt) && prompt.length === 1 ? prompt[0] : prompt;
  if (typeof text !== 'string' || text === '') {
    throw invalid('prompt', '`prompt` must be a non-empty string (token arrays and batches are not supported).',
      'INVALID_PROMPT');
  }
  return text;
}

/** Queues the task; an unknown model names the field. */
function enqueue(executor, task) {
  try {
    return executor.enqueue(task);
  } catch (e) {
    if (e && e.code === 'UNKNOWN_MODEL' && e.field === undefined) e.field = 'model';
    throw e;
  }
}

const FINISH = { eos: 'stop', stop: 'stop', length: 'length', cancelled: 'abort' };

function usageOf(r) {
  const prompt = r.promptTokens ?? 0;
  const completion = r.generatedTokens ?? 0;
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: r.cachedTokens ?? 0 },
  };
  if (r.ttftMs !== undefined) {
    usage.extra = {
      time_to_first_token_s: r.ttftMs / 1000,
      prefill_tokens_per_s: r.prefillTokensPerSecond,
      decode_tokens_per_s: r.decodeTokensPerSecond,
    };
  }
  return usage;
}

/**
 * A generation stopped by the request's signal while it ran: its partial result (finish reason
 * 'abort'); `null` for any other failure (a task cancelled before it ran rejects as it is).
 */
function aborted(error, signal) {
  if (!(signal && signal.aborted && error instanceof CancelledError && typeof error.text === 'string')) return null;
  return { text: error.text, promptTokens: error.promptTokens, cachedTokens: error.cachedTokens,
    generatedTokens: error.generatedTokens, stopReason: 'cancelled' };
}

function newId(prefix) {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The request's result, or its partial result when its signal stopped it. */
async function settle(handle, signal) {
  try {
    return await handle.result;
  } catch (e) {
    const partial = aborted(e, signal);
    if (partial) return partial;
    throw e;
  }
}

async function create(executor, request, kind) {
  const { task, stream, includeUsage } = readRequest(request, kind);
  const chat = kind === 'chat.completions';
  const handle = enqueue(executor, task);
  const id = newId(chat ? 'chatcmpl-' : 'cmpl-');
  const created = Math.floor(Date.now() / 1000);
  const model = () => handle.modelKey ?? task.modelKey ?? null;
  if (!stream) {
    const r = await settle(handle, task.signal);
    const finish = FINISH[r.stopReason] ?? 'stop';
    const choice = chat
      ? { index: 0, message: { role: 'assistant', content: r.text }, finish_reason: finish, logprobs: null }
      : { index: 0, text: r.text, finish_reason: finish, logprobs: null };
    return { id, object: chat ? 'chat.completion' : 'text_completion', created, model: r.modelKey ?? model(),
      choices: [choice], usage: usageOf(r) };
  }
  const object = chat ? 'chat.completion.chunk' : 'text_completion';
  const chunk = (choices, usage) => {
    const c = { id, object, created, model: model(), choices };
    if (includeUsage) c.usage = usage ?? null;
    return c;
  };
  const piece = (text, finish = null) => (chat
    ? { index: 0, delta: text === null ? {} : { content: text }, finish_reason: finish, logprobs: null }
    : { index: 0, text: text ?? '', finish_reason: finish, logprobs: null });
  return {
    async *[Symbol.asyncIterator]() {
      let done = false;
      try {
        if (chat) yield chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]);
        try {
          for await (const token of handle) {
            if (token.text) yield chunk([piece(token.text)]);
          }
        } catch (e) {
          if (!aborted(e, task.signal)) throw e;
        }
        const r = await settle(handle, task.signal);
        done = true;
        yield chunk([piece(null, FINISH[r.stopReason] ?? 'stop')]);
        if (includeUsage) yield chunk([], usageOf(r));
      } finally {
        // Leaving the loop early stops the generation.
        if (!done) handle.cancel();
      }
    },
  };
}

/**
 * The OpenAI-style API over `executor` (anything with a TaskExecutor's `enqueue`):
 * `{ chat: { completions: { create } }, completions: { create } }`.
 */
export function openai(executor) {
  return {
    chat: { completions: { create: (request) => create(executor, request, 'chat.completions') } },
    completions: { create: (request) => create(executor, request, 'completions') },
  };
}
