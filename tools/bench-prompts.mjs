// What `./run generate`, `./run bench decode` and `./run bench native` share: the catalog keys of
// the three real models and the benches' two prompts, so every engine sees the same inputs.
export const CATALOG = {
  'smollm2-135m': 'smollm2-135m-instruct-q4_1.gguf',
  'gemma-3-270m': 'gemma-3-270m-q4_k_m.gguf',
  'qwen2.5-0.5b': 'qwen2.5-coder-0.5b-instruct.gguf',
};
export const SHORT_PROMPT = 'Once upon a time';
// ~100 tokens with each of the three tokenizers (the benches' JSON has the exact counts).
export const LONG_PROMPT =
  'The old lighthouse keeper had lived on the island for forty years, and in all that time he had ' +
  'never once let the lamp go dark. Every evening he climbed the spiral stairs, trimmed the wick, ' +
  'polished the great lens until it shone, and watched the ships pass safely along the rocky coast. ' +
  'The villagers on the mainland said he talked to the gulls and the wind, but he only smiled. One ' +
  'stormy night in late November, a small fishing boat appeared out of the rain, and';
