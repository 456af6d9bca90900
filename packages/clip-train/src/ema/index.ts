export * from './model-ema.js';
