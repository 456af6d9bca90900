/** Rows of C per micro-tile. */
export const MR: number;
/** The module's WebAssembly text, importing a shared (threaded build) or an unshared memory. */
export function gemmWat(shared: boolean): string;
/** The module's binary. */
export function gemmBinary(shared: boolean): Promise<Uint8Array>;
/** The text of src/kernels/gemm-wasm-bytes.ts. */
export function generated(): Promise<string>;
