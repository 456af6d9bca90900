import { defineConfig } from 'vite';

// Cross-origin isolation lets tfjs pick its multi-threaded wasm binary (SharedArrayBuffer).
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  // Relative asset URLs: the built page works from any sub-path of a static host.
  base: './',
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  server: { headers: isolation },
  preview: { headers: isolation },
});
