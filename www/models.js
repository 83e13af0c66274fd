// What the demo knows about models beyond the catalog: which are instruct models (they chat)
// and which are base models (they continue text), which model the chat opens on, and the
// catalog entry for a GGUF file the user picked.

const own = new Map(); // the demo's models.json entries, by key
const picked = new Map(); // key -> { instruct } for files the user opened

/** Takes the demo's catalog (models.json): its entries carry `instruct: true | false`. */
export function learnCatalog(entries) {
  for (const e of entries) own.set(e.key, e);
}

/**
 * Whether catalog row `row` is an instruct (chat) model: the demo's own flag for its entries and
 * picked files; for the library's built-in entries, their description, which says "instruct".
 */
export function isInstruct(row) {
  const known = picked.get(row.key) ?? own.get(row.key);
  if (typeof known?.instruct === 'boolean') return known.instruct;
  return /\binstruct\b/i.test(row.description ?? '');
}

export const isPicked = (key) => picked.has(key);

/**
 * The model the chat opens on: of the instruct models the demo serves itself (models.json), the
 * largest that `canLoadModel` says fits this device now, or `undefined` when none does. The
 * larger built-in models download from Hugging Face, so they are one click away, never automatic.
 */
export function pickChatModel(rows) {
  const fitting = rows.filter((r) => own.has(r.key) && isInstruct(r) && r.fit.can);
  fitting.sort((a, b) => b.fit.requiredBytes - a.fit.requiredBytes || a.key.localeCompare(b.key));
  return fitting[0]?.key;
}

// llama.cpp's `general.file_type` values (llama_ftype) and their names.
const FILE_TYPES = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S',
  12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 32: 'BF16',
};

/** The block type holding the most bytes, for a file without `general.file_type`. */
function dominantType(gguf) {
  const bytes = new Map();
  for (const t of gguf.tensors()) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.size);
  return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'unknown';
}

/** A catalog key from a file name: letters, digits, '.', '_', '-', at most 64 characters. */
function keyFromName(name, taken) {
  const base = name.replace(/\.gguf$/i, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 56) || 'model';
  return taken(base) ? `${base}-picked` : base;
}

/**
 * The `registerModel` entry for a GGUF file the user picked, from its parsed header (`gguf`, a
 * `GgufFile`): the architecture, context length and quantization the file states. A key taken
 * by a catalog model (`taken(key)`) gets a suffix, so a picked file never replaces one. Whether
 * it chats is read from the file: an instruct model carries `tokenizer.chat_template`.
 * Missing fields are left empty for `registerModel` to reject, naming the field.
 */
export function entryForFile(file, gguf, taken) {
  const key = keyFromName(file.name, (k) => taken(k) && !picked.has(k));
  const arch = gguf.architecture ?? '';
  const fileType = gguf.metadata('general.file_type');
  const entry = {
    key,
    file,
    arch,
    quant: FILE_TYPES[Number(fileType)] ?? dominantType(gguf),
    contextLength: Number(gguf.metadata(`${arch}.context_length`) ?? 0),
    description: `Opened from ${file.name}.`,
  };
  const instruct = gguf.metadata('tokenizer.chat_template') !== undefined;
  return { entry, instruct };
}

/** Records that `key` is a picked file and whether it chats. */
export function notePicked(key, instruct) {
  picked.set(key, { instruct });
}
