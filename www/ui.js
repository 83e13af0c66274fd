// Small DOM helpers the demo's modules share. Model output and file names are always text,
// never HTML.

export const $ = (id) => document.getElementById(id);

/** `el('button', { class: 'x', text: 'Go', 'aria-label': '…' }, ...children)`. */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'role' || k.startsWith('aria-') || k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

export const mb = (n) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GB` : `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MB`);

/**
 * A model's hue: its key hashed (FNV-1a, 32 bits), so a model keeps its colour across pages and
 * reloads. A multiplicative finish spreads keys that differ only in their last characters.
 */
export function modelHue(key) {
  let h = 0x811c9dc5;
  for (const c of key) h = Math.imul(h ^ c.codePointAt(0), 0x01000193) >>> 0;
  return Math.floor(((Math.imul(h, 0x9e3779b1) >>> 0) / 2 ** 32) * 360);
}

/** The colour a model has everywhere on the page (gauge, catalog, chat, cache). */
export const modelColor = (key) => `hsl(${modelHue(key)} 70% 62%)`;

/** A small colour dot for `key`. */
export function swatch(key) {
  const s = el('span', { class: 'swatch', 'aria-hidden': 'true' });
  s.style.background = modelColor(key);
  return s;
}

/** `{ name, message, code }` of any thrown value (Hearth's errors carry a stable `code`). */
export function errorParts(err) {
  if (err instanceof Error) return { name: err.name, message: err.message, code: err.code };
  return { name: 'Error', message: String(err), code: undefined };
}

/** Copies `text`: the async clipboard, else a selected textarea and `execCommand('copy')`. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el('textarea', { value: text, readOnly: true, class: 'offscreen' });
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}
