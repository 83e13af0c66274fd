// The OpenAI-style API (executor.chat.completions / executor.completions) in the browser, over a
// TaskExecutor on SmolLM2 135M instruct (a local copy of the catalog's file) on the CPU backend:
// stream and non-stream agree, usage counts, stop sequences, abort mid-stream, bad input refused
// before anything is queued, and the multi-turn measurement: a 5-turn conversation whose every
// turn prefills only its new tokens (cached_tokens), with each turn's time to first token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness } from './harness.mjs';
import { catalog } from './catalog.mjs';

const CATALOG = catalog('smollm2-135m');
const KEY = 'smollm2-135m';

let h;
before(async () => {
  h = await openHarness();
  await h.page.evaluate(async (catalog) => {
    const { ModelManager, TaskExecutor, SseStreamer } = window.hearth;
    const streamer = new SseStreamer({ bufferSize: 8192 });
    const events = [];
    streamer.subscribe((e) => events.push({ type: e.type, data: e.data }));
    const manager = await ModelManager.create({ streamer, backend: 'cpu', catalog });
    await manager.init('smollm2-135m');
    window.chat = { manager, executor: new TaskExecutor(manager), events };
    window.plain = (e) => ({ name: e.name, code: e.code, message: e.message, ...Object.fromEntries(Object.entries(e)) });
    /** Reads a stream: its chunks, and the content and finish reason they carry. */
    window.drain = async (stream, onChunk) => {
      const chunks = [];
      let content = '';
      for await (const c of stream) {
        chunks.push(c);
        for (const choice of c.choices) content += choice.delta ? (choice.delta.content ?? '') : (choice.text ?? '');
        if (onChunk) onChunk(c, chunks.length);
      }
      const last = chunks.filter((c) => c.choices.length).at(-1);
      return { chunks, content, finish: last?.choices[0].finish_reason, usage: chunks.at(-1).usage };
    };
  }, CATALOG);
});
after(async () => {
  assert.deepEqual(h?.pageErrors.map(String) ?? [], []);
  await h?.close();
});

const QUESTION = [{ role: 'user', content: 'What is the capital of France?' }];

test('chat.completions: non-stream and stream give the same greedy text; usage, cached tokens and the chunk shapes', async () => {
  const out = await h.page.evaluate(async (messages) => {
    const { executor } = window.chat;
    const request = { model: 'smollm2-135m', messages, max_tokens: 24, temperature: 0 };
    const whole = await executor.chat.completions.create(request);
    const stream = await window.drain(await executor.chat.completions.create({
      ...request, stream: true, stream_options: { include_usage: true },
    }));
    const done = window.chat.events.filter((e) => e.type === 'done').at(-1).data;
    const plain = await window.drain(await executor.chat.completions.create({ ...request, stream: true }));
    return { whole, stream, plain, done };
  }, QUESTION);
  const { whole, stream, plain, done } = out;
  assert.equal(whole.object, 'chat.completion');
  assert.match(whole.id, /^chatcmpl-[0-9a-f]{24}$/);
  assert.equal(whole.model, KEY);
  assert.equal(whole.choices.length, 1);
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.ok(whole.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(whole.choices[0].finish_reason));
  const u = whole.usage;
  assert.ok(u.prompt_tokens > 10 && u.completion_tokens >= 1 && u.completion_tokens <= 24);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.ok(u.prompt_tokens_details.cached_tokens < u.prompt_tokens);
  console.log(`answer: ${JSON.stringify(whole.choices[0].message.content)} (${whole.choices[0].finish_reason}), usage ${JSON.stringify(u)}`);

  // The stream: the role first, then the content, then the finish reason, then the usage.
  assert.equal(stream.content, whole.choices[0].message.content);
  assert.equal(stream.finish, whole.choices[0].finish_reason);
  const [first] = stream.chunks;
  assert.deepEqual(first.choices[0].delta, { role: 'assistant', content: '' });
  assert.ok(stream.chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === stream.chunks[0].id && c.model === KEY));
  assert.ok(stream.chunks.slice(0, -1).every((c) => c.usage === null), 'usage is null on every chunk but the last');
  const usage = stream.chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage.prompt_tokens, u.prompt_tokens);
  assert.equal(usage.usage.completion_tokens, u.completion_tokens);
  // The same messages again: all of the prompt but its last token comes from the cache.
  assert.equal(usage.usage.prompt_tokens_details.cached_tokens, u.prompt_tokens - 1);
  // The status stream's `done` says the same.
  assert.deepEqual([done.promptTokens, done.cachedTokens], [u.prompt_tokens, u.prompt_tokens - 1]);
  // Without include_usage no chunk has a usage field.
  assert.equal(plain.content, whole.choices[0].message.content);
  assert.ok(plain.chunks.every((c) => !('usage' in c)));
});

test('completions: plain continuation, stream and non-stream alike', async () => {
  const out = await h.page.evaluate(async () => {
    const { executor } = window.chat;
    const request = { prompt: 'The three primary colours are', max_tokens: 12 };
    const whole = await executor.completions.create(request);
    const stream = await window.drain(await executor.completions.create({ ...request, stream: true }));
    return { whole, stream };
  });
  assert.equal(out.whole.object, 'text_completion');
  assert.match(out.whole.id, /^cmpl-/);
  assert.equal(out.whole.usage.completion_tokens, 12);
  assert.equal(out.whole.choices[0].finish_reason, 'length');
  assert.equal(out.stream.content, out.whole.choices[0].text);
  assert.equal(out.stream.finish, 'length');
  assert.ok(out.stream.chunks.every((c) => c.object === 'text_completion'));
  console.log(`continuation: ${JSON.stringify(out.whole.choices[0].text)}`);
});

test('a stop sequence ends the answer before it, with finish_reason stop', async () => {
  const out = await h.page.evaluate(async (messages) => {
    const { executor } = window.chat;
    const request = { messages, max_tokens: 24 };
    const free = (await executor.chat.completions.create(request)).choices[0].message.content;
    // A word from the middle of the greedy answer.
    const words = free.split(' ').filter((w) => w.length > 2);
    const stop = words[Math.min(2, words.length - 1)];
    const stopped = await executor.chat.completions.create({ ...request, stop: [stop, 'never-appears'] });
    const streamed = await window.drain(await executor.chat.completions.create({ ...request, stop, stream: true }));
    return { free, stop, stopped, streamed };
  }, QUESTION);
  const want = out.free.slice(0, out.free.indexOf(out.stop));
  assert.equal(out.stopped.choices[0].message.content, want);
  assert.equal(out.stopped.choices[0].finish_reason, 'stop');
  assert.equal(out.streamed.content, want);
  assert.equal(out.streamed.finish, 'stop');
});

test('aborting mid-stream ends it with finish_reason abort; a request aborted before it runs rejects', async () => {
  const out = await h.page.evaluate(async () => {
    const { executor } = window.chat;
    const ac = new AbortController();
    const request = { prompt: 'Once upon a time', max_tokens: 200, ignore_eos: true, stream: true,
      stream_options: { include_usage: true }, signal: ac.signal };
    const stream = await window.drain(await executor.completions.create(request), (c, n) => { if (n === 4) ac.abort(); });
    const pre = new AbortController();
    pre.abort();
    let early;
    try {
      await executor.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], signal: pre.signal });
    } catch (e) {
      early = window.plain(e);
    }
    // Breaking out of a stream stops its task too.
    const again = await executor.completions.create({ prompt: 'Once upon a time', max_tokens: 200, ignore_eos: true, stream: true });
    let n = 0;
    for await (const c of again) { void c; if (++n === 2) break; }
    for (let i = 0; i < 100 && executor.running !== undefined; i++) await new Promise((r) => setTimeout(r, 50));
    return { stream, early, running: executor.running ?? null, pending: executor.pending().length };
  });
  assert.equal(out.stream.finish, 'abort');
  const content = out.stream.chunks.filter((c) => c.choices[0]?.finish_reason === null);
  assert.ok(content.length >= 3 && content.length < 20, `${content.length} content chunks before the abort`);
  assert.ok(out.stream.usage.completion_tokens >= 3 && out.stream.usage.completion_tokens < 200);
  assert.equal(out.stream.usage.prompt_tokens, out.stream.usage.total_tokens - out.stream.usage.completion_tokens);
  assert.equal(out.early.name, 'CancelledError');
  assert.deepEqual([out.running, out.pending], [null, 0]);
});

test('bad input is an InvalidInputError naming the field, and nothing is queued', async () => {
  const out = await h.page.evaluate(async () => {
    const { executor, events } = window.chat;
    const user = [{ role: 'user', content: 'hi' }];
    const cases = {
      messages: { messages: [] },
      'messages[1].role': { messages: [user[0], { role: 'wizard', content: 'x' }] },
      'messages[0].content': { messages: [{ role: 'user' }] },
      max_tokens: { messages: user, max_tokens: 0 },
      temperature: { messages: user, temperature: 2.5 },
      top_p: { messages: user, top_p: 1.5 },
      n: { messages: user, n: 2 },
      logprobs: { messages: user, logprobs: true },
      tools: { messages: user, tools: [{ type: 'function', function: { name: 'f' } }] },
      response_format: { messages: user, response_format: { type: 'json_object' } },
      stream_options: { messages: user, stream_options: { include_usage: true } },
      model: { messages: user, model: 'no-such-model' },
      max_tokenz: { messages: user, max_tokenz: 3 },
    };
    const before = events.length;
    const errors = {};
    for (const [field, request] of Object.entries(cases)) {
      try {
        await executor.chat.completions.create(request);
        errors[field] = null;
      } catch (e) {
        errors[field] = window.plain(e);
      }
    }
    let prompt;
    try { await executor.completions.create({ prompt: '' }); } catch (e) { prompt = window.plain(e); }
    await new Promise((r) => setTimeout(r, 50));
    const ran = events.slice(before).filter((e) => e.type === 'token' || e.type === 'done').length;
    return { errors, prompt, ran, pending: executor.pending().length, running: executor.running ?? null };
  });
  for (const [field, e] of Object.entries(out.errors)) {
    assert.ok(e, `${field}: no error`);
    assert.equal(e.name, 'InvalidInputError', `${field}: ${e.name} ${e.message}`);
    assert.equal(e.field, field, `${field}: field ${e.field}`);
  }
  assert.equal(out.errors.model.code, 'UNKNOWN_MODEL');
  assert.equal(out.errors.messages.code, 'INVALID_MESSAGES');
  assert.deepEqual([out.prompt.name, out.prompt.field], ['InvalidInputError', 'prompt']);
  assert.deepEqual([out.ran, out.pending, out.running], [0, 0, null]);
});

test('measurement: a 5-turn conversation prefills only each turn\'s new tokens', async () => {
  const turns = [
    'Hi! My name is Ada. What is a good name for a cat?',
    'Why did you pick that name?',
    'Can you suggest a name for a dog as well?',
    'Which of the two names is shorter?',
    'Thanks! Please say goodbye to me by name.',
  ];
  const run = (cachePrompt) => h.page.evaluate(async ({ turns, cachePrompt }) => {
    const { executor } = window.chat;
    // A fresh system prompt per run, so the first turn finds nothing of it in the cache.
    const messages = [{ role: 'system', content: `You are a helpful assistant (${cachePrompt ? 'reuse' : 'no reuse'} run).` }];
    const out = [];
    for (const question of turns) {
      messages.push({ role: 'user', content: question });
      const t0 = performance.now();
      let ttft = null;
      const stream = await executor.chat.completions.create({
        messages, max_tokens: 48, stream: true, stream_options: { include_usage: true }, cache_prompt: cachePrompt,
      });
      const r = await window.drain(stream, (c) => {
        if (ttft === null && c.choices[0]?.delta.content) ttft = performance.now() - t0;
      });
      messages.push({ role: 'assistant', content: r.content });
      out.push({ ttft, engineTtft: r.usage.extra.time_to_first_token_s * 1000, usage: r.usage, finish: r.finish });
    }
    return out;
  }, { turns, cachePrompt });
  const reuse = await run(true);
  const fresh = await run(false);
  for (const [name, rows] of [['with reuse', reuse], ['without reuse', fresh]]) {
    for (const [i, t] of rows.entries()) {
      const u = t.usage;
      console.log(`${name} turn ${i + 1}: ttft ${t.ttft.toFixed(0)} ms (engine ${t.engineTtft.toFixed(0)} ms), prompt ${u.prompt_tokens}, cached ${u.prompt_tokens_details.cached_tokens}, evaluated ${u.prompt_tokens - u.prompt_tokens_details.cached_tokens}, completion ${u.completion_tokens} (${t.finish})`);
    }
    console.log(`${name}: ttft turn5/turn1 = ${(rows[4].ttft / rows[0].ttft).toFixed(2)} (engine ${(rows[4].engineTtft / rows[0].engineTtft).toFixed(2)})`);
  }
  for (let i = 1; i < 5; i++) {
    const [prev, cur] = [reuse[i - 1].usage, reuse[i].usage];
    // Everything the model saw before (the previous prompt and answer, whose last token was
    // never fed back) is reused: only the end-of-turn markers and the new message are evaluated.
    assert.equal(cur.prompt_tokens_details.cached_tokens, prev.prompt_tokens + prev.completion_tokens - 1, `turn ${i + 1}`);
    const evaluated = cur.prompt_tokens - cur.prompt_tokens_details.cached_tokens;
    assert.ok(evaluated <= 30, `turn ${i + 1} evaluated ${evaluated} tokens`);
    assert.equal(fresh[i].usage.prompt_tokens_details.cached_tokens, 0);
  }
});

test('chat.completions in worker mode: the same greedy answer, chunks and usage as on the page', async () => {
  const out = await h.page.evaluate(async ({ messages, catalog }) => {
    const { ModelManager, TaskExecutor } = window.hearth;
    const request = { model: 'smollm2-135m', messages, max_tokens: 16, temperature: 0 };
    const onPage = await window.chat.executor.chat.completions.create({ ...request, cache_prompt: false });
    const manager = await ModelManager.create({ worker: true, backend: 'cpu', catalog, cache: false });
    try {
      const executor = new TaskExecutor(manager);
      const whole = await executor.chat.completions.create(request);
      const stream = await window.drain(await executor.chat.completions.create({
        ...request, stream: true, stream_options: { include_usage: true },
      }));
      let error = null;
      try {
        await executor.chat.completions.create({ ...request, max_tokens: 0 });
      } catch (e) {
        error = { name: e.name, field: e.field, instance: e instanceof window.hearth.InvalidInputError };
      }
      return { inWorker: manager.inWorker, onPage, whole, stream, error };
    } finally {
      await manager.terminate();
    }
  }, { messages: QUESTION, catalog: CATALOG });
  assert.equal(out.inWorker, true);
  assert.equal(out.whole.choices[0].message.content, out.onPage.choices[0].message.content);
  assert.equal(out.whole.choices[0].finish_reason, out.onPage.choices[0].finish_reason);
  assert.equal(out.whole.usage.prompt_tokens, out.onPage.usage.prompt_tokens);
  assert.equal(out.whole.usage.completion_tokens, out.onPage.usage.completion_tokens);
  assert.equal(out.stream.content, out.whole.choices[0].message.content);
  assert.equal(out.stream.finish, out.whole.choices[0].finish_reason);
  // The second request reuses the worker model's KV cache for the shared prompt.
  assert.ok(out.stream.usage.prompt_tokens_details.cached_tokens > 0);
  assert.deepEqual(out.error, { name: 'InvalidInputError', field: 'max_tokens', instance: true });
});
