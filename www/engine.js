// Where the demo meets Hearth's engine: the one place that says where models run (on the page
// or in a dedicated Worker), and the one function every generation goes through.
import { ModelManager, TaskExecutor } from '@hearth-llm/hearth';

/**
 * Run models, tokenizers and generation in a dedicated Worker, so the page stays responsive
 * while a model loads or generates. It is ModelManager's `worker` option; a package without
 * Worker support ignores options it does not know and runs everything on the page.
 */
export const WORKER = true;

/** The manager (with the demo's catalog and status stream) and the executor chats run on. */
export async function createEngine({ streamer, backend, catalog }) {
  const manager = await ModelManager.create({ worker: WORKER, streamer, backend, catalog });
  return { manager, executor: new TaskExecutor(manager) };
}

/**
 * One generation on catalog model `modelKey`: `messages` (a chat, rendered with the model's
 * template) or `prompt` (plain text the model continues). `onToken(text)` gets each piece of
 * text as it comes. Resolves with the result (`text`, `promptTokens`, `generatedTokens`,
 * `ttftMs`, `prefillTokensPerSecond`, `decodeTokensPerSecond`, `stopReason`, `backend`);
 * rejects with Hearth's typed errors, `CancelledError` when `signal` aborts.
 */
export async function streamReply(executor, { modelKey, messages, prompt, params, signal, onToken }) {
  const task = executor.enqueue(messages ? { modelKey, messages, params, signal } : { modelKey, prompt, params, signal });
  const result = task.result;
  // The token loop below rethrows the task's error; `result` rejects with the same one.
  result.catch(() => {});
  for await (const t of task) onToken(t.text);
  return result;
}
