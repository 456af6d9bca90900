import { registerWasmKernelOverrides } from './wasm.js';

/**
 * Fills for kernels some backends lack (e.g. wasm has no UnsortedSegmentSum, which the gradient of
 * `gather` — embedding training — needs). Each fill registers only where the backend has no kernel.
 * The same hook also installs replacements for stock kernels that are far too slow (see ./wasm.ts).
 */
const registered = new Set<string>();
const fills = new Map<string, Array<() => void>>();

/** Add a fill for `backend`; it runs once, the first time that backend is initialised via initBackend. */
export function addKernelFill(backend: string, register: () => void): void {
  const list = fills.get(backend) ?? [];
  list.push(register);
  fills.set(backend, list);
}

export function registerKernelFills(backend: string): void {
  if (registered.has(backend)) return;
  registered.add(backend);
  for (const register of fills.get(backend) ?? []) register();
}

addKernelFill('wasm', registerWasmKernelOverrides);
