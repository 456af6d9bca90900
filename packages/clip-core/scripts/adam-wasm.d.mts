/** The module's WebAssembly text, importing a shared (threaded build) or an unshared memory. */
export function adamWat(shared: boolean): string;
/** The module's binary. */
export function adamBinary(shared: boolean): Promise<Uint8Array>;
/** The text of src/kernels/adam-wasm-bytes.ts. */
export function generated(): Promise<string>;
