// Vite's defaults, plus what any app using a wasm-bindgen package needs: the dev server must not
// pre-bundle it (pre-bundling moves the JS away from its `new URL('hearth_bg.wasm', import.meta.url)`
// target). `vite build` needs nothing: it follows the `new URL(...)` and emits the wasm (and worker
// mode's script) as hashed assets.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: { target: 'es2022' },
  optimizeDeps: { exclude: ['@hearth-llm/hearth'] },
});
