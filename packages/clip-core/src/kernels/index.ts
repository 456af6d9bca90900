import { registerConv2DBackpropFilterWasm } from './conv2d-backprop-filter.js';
import { registerMaxPoolGradWasm } from './max-pool-grad.js';
import { registerUnsortedSegmentSumCpu, registerUnsortedSegmentSumWasm } from './unsorted-segment-sum.js';
import { registerWasmKernelOverrides } from './wasm.js';

/**
 * Kernels clip-ts adds to a backend once initBackend has set it: fills for kernels a backend lacks
 * (wasm has no UnsortedSegmentSum, which the gradient of `gather` — embedding training — needs, nor
 * Conv2DBackpropFilter, the gradient of a convolution's weights; its MaxPoolGrad is wrong for more than one
 * image or channel) and
 * replacements for stock kernels that are far too slow (cpu's UnsortedSegmentSum, wasm's BatchMatMul and
 * Slice). One static table, so what gets patched is visible in one place and nothing registers by import.
 */
const KERNELS: Readonly<Record<string, ReadonlyArray<() => void>>> = {
  wasm: [registerWasmKernelOverrides, registerUnsortedSegmentSumWasm, registerConv2DBackpropFilterWasm, registerMaxPoolGradWasm],
  cpu: [registerUnsortedSegmentSumCpu],
};

const registered = new Set<string>();

/** Install the kernels for `backend` (tfjs's backend name); later calls for the same backend do nothing. */
export function registerKernels(backend: string): void {
  if (registered.has(backend)) return;
  registered.add(backend);
  for (const register of KERNELS[backend] ?? []) register();
}
