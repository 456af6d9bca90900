// `@clip-ts/core/node`: the Node-only half of @clip-ts/core (files and directories). Everything else is
// in the browser-safe main entry.
export * from './atomic.js';
export * from './safetensors-file.js';
export * from './checkpoint-dir.js';
