// Generates src/kernels/adam-wasm-bytes.ts: the fused Adam/AdamW update and an in-place add in WebAssembly SIMD,
// run on tfjs-backend-wasm's own memory (imported) so they update the tensors where tfjs keeps them.
// Assembled with wabt.
//   node packages/clip-core/scripts/adam-wasm.mjs          write the file
//   node packages/clip-core/scripts/adam-wasm.mjs --check  exit 1 if the committed file is out of date
import { assemble, writeWhenRun } from './wasm-build.mjs';

/**
 * The three variants of the update: no decay, L2 decay added to the gradient (Adam), decoupled decay of the
 * weight (AdamW). Separate functions rather than a flag so the loop has no branch.
 */
const VARIANTS = ['plain', 'l2', 'decoupled'];

/**
 * One element group's update, in the order (and with the roundings) of AdamOptimizer's tensor ops:
 *   g' = g + w·l2 (l2 only); m = m·b1 + g'·c1; v = v·b2 + (g'·g')·c2; d = sqrt(v)/bc2 + eps;
 *   w' = w·decay (decoupled only); w = w' − (m/d)·step.
 * `t` is the lane type (f32x4 or f32), `k(name)` a coefficient of that type, `load`/`store` address the arrays.
 */
function body(variant, t, k, load, store) {
  const op = (o, a, b) => `(${t}.${o} ${a} ${b})`;
  let grad = load('g');
  if (variant === 'l2') grad = op('add', grad, op('mul', '(local.get $wv)', k('l2')));
  return `(local.set $wv ${load('w')})
        (local.set $gv ${grad})
        (local.set $mv ${op('add', op('mul', load('m'), k('b1')), op('mul', '(local.get $gv)', k('c1')))})
        (local.set $vv ${op('add', op('mul', load('v'), k('b2')), op('mul', op('mul', '(local.get $gv)', '(local.get $gv)'), k('c2')))})
        (local.set $dv ${op('add', op('div', `(${t}.sqrt (local.get $vv))`, k('bc2')), k('eps'))})
        ${variant === 'decoupled' ? `(local.set $wv ${op('mul', '(local.get $wv)', k('decay'))})` : ''}
        ${store('m', '(local.get $mv)')}
        ${store('v', '(local.get $vv)')}
        ${store('w', op('sub', '(local.get $wv)', op('mul', op('div', '(local.get $mv)', '(local.get $dv)'), k('step'))))}`;
}

const COEFFS = ['b1', 'c1', 'b2', 'c2', 'bc2', 'eps', 'step', 'l2', 'decay'];

function adamFunc(variant) {
  const vec = body(
    variant,
    'f32x4',
    (name) => `(local.get $${name}x4)`,
    (a) => `(v128.load (i32.add (local.get $${a}) (local.get $off)))`,
    (a, x) => `(v128.store (i32.add (local.get $${a}) (local.get $off)) ${x})`,
  );
  const scalar = body(
    variant,
    'f32',
    (name) => `(local.get $${name})`,
    (a) => `(f32.load (i32.add (local.get $${a}) (local.get $off)))`,
    (a, x) => `(f32.store (i32.add (local.get $${a}) (local.get $off)) ${x})`,
  );
  const rename = (text, from, to) => text.replaceAll(`$${from}`, `$${to}`);
  // The scalar tail uses f32 locals of the same names with an `s` suffix.
  let tail = scalar;
  for (const l of ['wv', 'gv', 'mv', 'vv', 'dv']) tail = rename(tail, l, `${l}s`);
  return `
  ;; w, m, v updated in place over n floats (byte addresses; any alignment)
  (func (export "adam_${variant}") (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
      ${COEFFS.map((c) => `(param $${c} f32)`).join(' ')}
    (local $off i32) (local $end i32) (local $vecEnd i32)
    ${COEFFS.map((c) => `(local $${c}x4 v128)`).join(' ')}
    (local $wv v128) (local $gv v128) (local $mv v128) (local $vv v128) (local $dv v128)
    (local $wvs f32) (local $gvs f32) (local $mvs f32) (local $vvs f32) (local $dvs f32)
    ${COEFFS.map((c) => `(local.set $${c}x4 (f32x4.splat (local.get $${c})))`).join('\n    ')}
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $end) (i32.const -16)))
    (block $vd (loop $vl
      (br_if $vd (i32.ge_u (local.get $off) (local.get $vecEnd)))
        ${vec}
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br $vl)))
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u (local.get $off) (local.get $end)))
        ${tail}
      (local.set $off (i32.add (local.get $off) (i32.const 4)))
      (br $sl))))
`;
}

/** The module text: `adam_plain`, `adam_l2`, `adam_decoupled` and `add` (dst[i] = dst[i] + src[i]). */
export function adamWat(shared) {
  return `(module
  (import "env" "memory" (memory 1 65536${shared ? ' shared' : ''}))
${VARIANTS.map(adamFunc).join('')}
  (func (export "add") (param $dst i32) (param $src i32) (param $n i32)
    (local $off i32) (local $end i32) (local $vecEnd i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $end) (i32.const -16)))
    (block $vd (loop $vl
      (br_if $vd (i32.ge_u (local.get $off) (local.get $vecEnd)))
      (v128.store (i32.add (local.get $dst) (local.get $off))
        (f32x4.add (v128.load (i32.add (local.get $dst) (local.get $off))) (v128.load (i32.add (local.get $src) (local.get $off)))))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br $vl)))
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u (local.get $off) (local.get $end)))
      (f32.store (i32.add (local.get $dst) (local.get $off))
        (f32.add (f32.load (i32.add (local.get $dst) (local.get $off))) (f32.load (i32.add (local.get $src) (local.get $off)))))
      (local.set $off (i32.add (local.get $off) (i32.const 4)))
      (br $sl))))
)
`;
}

/** The module's binary for an unshared or a shared (threaded build) memory. */
export async function adamBinary(shared) {
  return assemble('adam.wat', adamWat(shared));
}

export async function generated() {
  const [plain, shared] = [await adamBinary(false), await adamBinary(true)];
  return `// Generated by packages/clip-core/scripts/adam-wasm.mjs (the WebAssembly text is there): do not edit.
/** The fused Adam update and in-place add for the single-threaded build's memory, base64. */
export const ADAM_WASM = '${plain.toString('base64')}';
/** The same module importing a shared memory (the threaded build), base64. */
export const ADAM_WASM_SHARED = '${shared.toString('base64')}';
`;
}

await writeWhenRun(import.meta.url, '../src/kernels/adam-wasm-bytes.ts', generated);
