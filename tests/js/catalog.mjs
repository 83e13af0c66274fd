// Catalog entries the page tests share: the real models as local copies (served under /models)
// and the tiny fixtures (tools/make_fixtures.py, under /fixtures). `catalog(...keys)` gives fresh
// copies, so a test that edits an entry changes no other test's.
const ENTRIES = {
  'smollm2-135m': { key: 'smollm2-135m', url: '/models/smollm2-135m-instruct-q4_1.gguf', arch: 'llama', quant: 'Q4_1',
    fileBytes: 98362432, contextLength: 8192, requiredBytes: 193366032, description: 'SmolLM2 135M (local copy)' },
  'gemma-3-270m': { key: 'gemma-3-270m', url: '/models/gemma-3-270m-q4_k_m.gguf', arch: 'gemma3', quant: 'Q4_K_M',
    fileBytes: 253113024, contextLength: 32768, requiredBytes: 326288656, description: 'Gemma 3 270M (local copy)' },
  'fx-llama': { key: 'fx-llama', url: '/fixtures/llama-q4_0.gguf', arch: 'llama', quant: 'Q4_0', fileBytes: 5352288, contextLength: 128 },
  'fx-qwen': { key: 'fx-qwen', url: '/fixtures/qwen2-q4_0.gguf', arch: 'qwen2', quant: 'Q4_0', fileBytes: 11446208, contextLength: 128 },
  'fx-gemma': { key: 'fx-gemma', url: '/fixtures/gemma3-q4_0.gguf', arch: 'gemma3', quant: 'Q4_0', fileBytes: 16112992, contextLength: 128 },
};

export function catalog(...keys) {
  return keys.map((key) => {
    if (!ENTRIES[key]) throw new Error(`tests/js/catalog.mjs has no entry ${key}`);
    return { ...ENTRIES[key] };
  });
}
