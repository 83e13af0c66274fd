// The chat card. An instruct model chats (bubbles, a system prompt, regenerate, copy); a base
// model gets "continue the text": a text area the model extends. Every generation goes through
// `streamReply` (engine.js). Errors of a generation, or of a picked file, appear in the chat as
// error bubbles. The live region announces whole answers, once each, never token by token.
import { CancelledError } from '@hearth-llm/hearth';
import { streamReply } from './engine.js';
import { $, el, errorParts, copyText, swatch } from './ui.js';

export function setupChat({ executor, streamer }) {
  /** The conversation: `{ role, content, node }`, `node` the bubble on screen. */
  let turns = [];
  let model = null; // { key, instruct }
  let running = null; // the AbortController of the generation in flight

  const chat = $('chat');
  const scroll = () => { chat.scrollTop = chat.scrollHeight; };

  function announce(text) {
    // Cleared first so that the same answer twice (a regenerate at temperature 0) is still a change.
    $('announce').replaceChildren();
    $('announce').textContent = text;
  }

  function params() {
    return {
      maxTokens: Number($('max-tokens').value),
      temperature: Number($('temperature').value),
      topP: Number($('top-p').value),
    };
  }

  function stats(r) {
    $('chat-stats').textContent = `${r.generatedTokens} tokens · TTFT ${(r.ttftMs / 1000).toFixed(2)} s · ${r.decodeTokensPerSecond.toFixed(2)} tok/s · prefill ${r.prefillTokensPerSecond.toFixed(1)} tok/s · ${r.promptTokens} prompt tokens · ${r.backend}`;
  }

  function sync() {
    const idle = running === null && model !== null;
    const chatting = model?.instruct === true;
    $('prompt').disabled = !model || !chatting;
    $('send').disabled = !idle || !chatting;
    $('continue').disabled = !idle || chatting;
    $('continue-text').readOnly = running !== null;
    $('stop').disabled = running === null;
    $('regenerate').disabled = !idle || !chatting || !turns.some((t) => t.role === 'user');
    $('new-chat').disabled = !model;
  }

  /** An error bubble: the typed error's class, message and code. */
  function showError(err) {
    const { name, message, code } = errorParts(err);
    const node = el('div', { class: 'msg error', role: 'alert' },
      el('strong', { class: 'name', text: name }), ': ', el('span', { class: 'message', text: message }));
    if (code) node.append(' ', el('code', { class: 'code', text: code }));
    chat.append(node);
    scroll();
    return node;
  }

  function bubble(role, text) {
    const node = el('div', { class: `msg ${role}` }, el('div', { class: 'text', text }));
    chat.append(node);
    scroll();
    return node;
  }

  function addCopy(node) {
    const b = el('button', { class: 'secondary copy', text: 'Copy', title: 'Copy this answer' });
    b.onclick = async () => {
      const ok = await copyText(node.querySelector('.text').textContent);
      b.textContent = ok ? 'Copied' : 'Copy failed';
      setTimeout(() => { b.textContent = 'Copy'; }, 1500);
    };
    node.append(el('div', { class: 'actions' }, b));
  }

  /** Runs one generation with the Stop button live; resolves `{ result }` or `{ error }`. */
  async function generate(input, onToken) {
    running = new AbortController();
    sync();
    try {
      const result = await streamReply(executor, { modelKey: model.key, ...input, params: params(), signal: running.signal, onToken });
      stats(result);
      return { result };
    } catch (error) {
      if (error instanceof CancelledError) $('chat-stats').textContent = 'Stopped.';
      return { error };
    } finally {
      running = null;
      sync();
    }
  }

  const system = () => {
    const text = $('system-prompt').value.trim();
    return text ? [{ role: 'system', content: text }] : [];
  };

  /** Answers the conversation as it stands (its last turn is the user's). */
  async function answer() {
    const node = bubble('assistant', '');
    const out = node.querySelector('.text');
    const messages = [...system(), ...turns.map(({ role, content }) => ({ role, content }))];
    const { result, error } = await generate({ messages }, (t) => { out.textContent += t; scroll(); });
    if (error && !(error instanceof CancelledError)) {
      node.remove();
      showError(error);
      return;
    }
    const text = result ? result.text : out.textContent;
    if (!text && !result) {
      node.remove(); // stopped before the first token: the user turn waits for Regenerate
      return;
    }
    out.textContent = text;
    turns.push({ role: 'assistant', content: text, node });
    addCopy(node);
    if (result) announce(text);
  }

  async function send() {
    const text = $('prompt').value.trim();
    if (!text || !model?.instruct || running) return;
    // A user turn that got no answer (its generation failed) leaves the conversation.
    if (turns.at(-1)?.role === 'user') turns.pop().node.classList.add('failed');
    $('prompt').value = '';
    turns.push({ role: 'user', content: text, node: bubble('user', text) });
    await answer();
  }

  async function regenerate() {
    if (!model?.instruct || running) return;
    if (turns.at(-1)?.role === 'assistant') turns.pop().node.remove();
    if (turns.at(-1)?.role === 'user') await answer();
  }

  async function continueText() {
    const area = $('continue-text');
    const prompt = area.value;
    if (!prompt || !model || model.instruct || running) return;
    const { result, error } = await generate({ prompt }, (t) => { area.value += t; area.scrollTop = area.scrollHeight; });
    if (error && !(error instanceof CancelledError)) showError(error);
    if (result) {
      area.value = prompt + result.text; // the result holds any text the token stream held back
      announce(result.text);
    }
  }

  function newChat() {
    running?.abort();
    turns = [];
    chat.replaceChildren();
    $('continue-text').value = '';
    $('chat-stats').textContent = '';
    sync();
  }

  /** The model the chat talks to (`null` for none); a different model starts a new chat. */
  function setModel(key, instruct) {
    const changed = key !== model?.key;
    model = key ? { key, instruct } : null;
    const card = $('chat-card');
    card.dataset.mode = instruct ? 'chat' : 'continue';
    if (key) card.dataset.model = key; else delete card.dataset.model;
    const label = $('chat-model');
    label.replaceChildren();
    if (key) label.append(swatch(key), instruct ? `Chatting with ${key}` : `${key} (base model) continues your text`);
    else label.textContent = 'Load a model to chat.';
    $('chat-box').hidden = key !== null && !instruct;
    $('regenerate').hidden = key !== null && !instruct;
    $('new-chat').textContent = key !== null && !instruct ? 'New text' : 'New chat';
    $('continue-box').hidden = !!instruct || !key;
    if (changed) newChat();
    sync();
  }

  $('send').onclick = send;
  $('prompt').onkeydown = (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); } };
  $('continue').onclick = continueText;
  $('copy-text').onclick = async () => {
    const ok = await copyText($('continue-text').value);
    streamer.streamInfo(ok ? 'Copied the text.' : 'Could not copy the text.');
  };
  $('regenerate').onclick = regenerate;
  $('new-chat').onclick = newChat;
  $('stop').onclick = () => running?.abort();
  sync();

  return { setModel, showError, isBusy: () => running !== null };
}
