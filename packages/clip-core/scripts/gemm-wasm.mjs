// Generates src/kernels/gemm-wasm-bytes.ts: a batched f32 GEMM in WebAssembly SIMD that runs on tfjs-backend-wasm's
// own memory (imported), so it reads the operands and writes the product in place. Assembled with wabt.
//   node packages/clip-core/scripts/gemm-wasm.mjs          write the file
//   node packages/clip-core/scripts/gemm-wasm.mjs --check  exit 1 if the committed file is out of date
import { assemble, writeWhenRun } from './wasm-build.mjs';

/** Rows of C per micro-tile (each a pair of f32x4 accumulators: 8 columns). 4×8 measured 27–33 GFLOP/s on one
 *  thread (V8 11, x86-64); 6×8 (12 accumulators, on paper the better ratio of loads to multiply-adds) only
 *  18–22: V8 then spills accumulators out of the 16 vector registers. */
export const MR = 4;
const NR = 8;

const range = (n) => Array.from({ length: n }, (_, i) => i);
/** i8x16.shuffle byte indices picking f32 lanes (0–3 of the first operand, 4–7 of the second). */
const lanes = (...ls) => ls.flatMap((l) => range(4).map((b) => 4 * l + b)).join(' ');
const LO = lanes(0, 4, 1, 5);
const HI = lanes(2, 6, 3, 7);
const LO64 = lanes(0, 1, 4, 5);
const HI64 = lanes(2, 3, 6, 7);

/**
 * The module text. `gemm` computes, for e < batch, C[e] = op(A)[e] · op(B)[e] with
 *   op(A)[e][i][kk] = f32 at a + 4·(e·aBS + i·aRS + kk·aCS), op(B)[e][kk][j] = b + 4·(e·bBS + kk·bRS + j·bCS),
 *   C[e][i][j] at c + 4·(e·m·n + i·n + j)   (strides in floats; a batch stride of 0 broadcasts that operand).
 * Transposed operands are just other strides. Per entry it packs op(A) into MR-row panels (k-major, zero
 * rows past m) and op(B) into 8-column panels (zero columns past n) in `scratch`, then walks each B panel
 * (kept in L1) over all A panels. Needs k ≥ 1 and scratch ≥ scratchFloats(m, k, n) floats, 16-byte aligned.
 */
export function gemmWat(shared) {
  if (MR !== 4) throw new Error('packA transposes 4×4 blocks: MR must be 4');
  const rowB = (c) => `(v128.load (i32.add (local.get $src) (i32.mul (i32.const ${c}) (local.get $csb))))`;
  const trB = [0, 4].map((c0) => `(call $tr4 ${range(4).map((c) => rowB(c0 + c)).join(' ')} (i32.add (local.get $dst) (i32.const ${4 * c0})) (i32.const 32))`).join('\n            ');
  const acc = range(MR).flatMap((r) => [`$c${r}_0`, `$c${r}_1`]);
  const zero = acc.map((a) => `(local.set ${a} (v128.const i32x4 0 0 0 0))`).join('\n          ');
  const fma = range(MR)
    .map((r) => `(local.set $av (v128.load32_splat offset=${4 * r} (local.get $pa)))
            (local.set $c${r}_0 (f32x4.add (local.get $c${r}_0) (f32x4.mul (local.get $av) (local.get $b0))))
            (local.set $c${r}_1 (f32x4.add (local.get $c${r}_1) (f32x4.mul (local.get $av) (local.get $b1))))`)
    .join('\n            ');
  const storeFull = range(MR)
    .map((r) => `(v128.store (i32.add (local.get $cp) (i32.mul (i32.const ${r}) (local.get $rowBytes))) (local.get $c${r}_0))
          (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (i32.const ${r}) (local.get $rowBytes))) (local.get $c${r}_1))`)
    .join('\n          ');
  const storeTile = range(MR)
    .map((r) => `(v128.store offset=${32 * r} (local.get $tile) (local.get $c${r}_0))
          (v128.store offset=${32 * r + 16} (local.get $tile) (local.get $c${r}_1))`)
    .join('\n          ');
  return `(module
  (import "env" "memory" (memory 1 65536${shared ? ' shared' : ''}))


  ;; rows r0..r3 (4 floats each) stored transposed: column t of them at dst + t·stride
  (func $tr4 (param $r0 v128) (param $r1 v128) (param $r2 v128) (param $r3 v128) (param $dst i32) (param $stride i32)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $t0 (i8x16.shuffle ${LO} (local.get $r0) (local.get $r1)))
    (local.set $t1 (i8x16.shuffle ${HI} (local.get $r0) (local.get $r1)))
    (local.set $t2 (i8x16.shuffle ${LO} (local.get $r2) (local.get $r3)))
    (local.set $t3 (i8x16.shuffle ${HI} (local.get $r2) (local.get $r3)))
    (v128.store (local.get $dst) (i8x16.shuffle ${LO64} (local.get $t0) (local.get $t2)))
    (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
    (v128.store (local.get $dst) (i8x16.shuffle ${HI64} (local.get $t0) (local.get $t2)))
    (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
    (v128.store (local.get $dst) (i8x16.shuffle ${LO64} (local.get $t1) (local.get $t3)))
    (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
    (v128.store (local.get $dst) (i8x16.shuffle ${HI64} (local.get $t1) (local.get $t3))))

  ;; dst[p][kk][c] = op(B)[kk][8p + c], 0 past n
  (func $packB (param $b i32) (param $rs i32) (param $cs i32) (param $k i32) (param $n i32) (param $dst i32)
    (local $j0 i32) (local $kk i32) (local $c i32) (local $src i32) (local $csb i32) (local $rsb i32) (local $lim i32)
    (local.set $csb (i32.shl (local.get $cs) (i32.const 2)))
    (local.set $rsb (i32.shl (local.get $rs) (i32.const 2)))
    (block $pd (loop $pl
      (br_if $pd (i32.ge_u (local.get $j0) (local.get $n)))
      (local.set $lim (i32.sub (local.get $n) (local.get $j0)))
      (local.set $kk (i32.const 0))
      (block $kd (loop $kl
        (br_if $kd (i32.ge_u (local.get $kk) (local.get $k)))
        (local.set $src (i32.add (local.get $b)
          (i32.shl (i32.add (i32.mul (local.get $kk) (local.get $rs)) (i32.mul (local.get $j0) (local.get $cs))) (i32.const 2))))
        (if (i32.and (i32.ge_u (local.get $lim) (i32.const 8)) (i32.eq (local.get $cs) (i32.const 1)))
          (then
            (v128.store (local.get $dst) (v128.load (local.get $src)))
            (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $src))))
          (else (if (i32.and (i32.and (i32.ge_u (local.get $lim) (i32.const 8)) (i32.eq (local.get $rs) (i32.const 1)))
                             (i32.le_u (i32.add (local.get $kk) (i32.const 4)) (local.get $k)))
          (then
            ;; B stored transposed ([n, k]): 4 k-steps of 8 columns at once, two 4×4 transposes
            ${trB}
            (local.set $dst (i32.add (local.get $dst) (i32.const 96)))
            (local.set $kk (i32.add (local.get $kk) (i32.const 3))))
          (else
            (local.set $c (i32.const 0))
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u (local.get $c) (i32.const 8)))
              (f32.store (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $c) (local.get $lim))
                  (then (f32.load (local.get $src)))
                  (else (f32.const 0))))
              (local.set $src (i32.add (local.get $src) (local.get $csb)))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $cl)))))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kl)))
      (local.set $j0 (i32.add (local.get $j0) (i32.const 8)))
      (br $pl)))
  )

  ;; dst[q][kk][r] = op(A)[${MR}q + r][kk], 0 past m
  (func $packA (param $a i32) (param $rs i32) (param $cs i32) (param $m i32) (param $k i32) (param $dst i32)
    (local $i0 i32) (local $kk i32) (local $r i32) (local $src i32) (local $rsb i32) (local $csb i32) (local $lim i32)
    (local.set $rsb (i32.shl (local.get $rs) (i32.const 2)))
    (local.set $csb (i32.shl (local.get $cs) (i32.const 2)))
    (block $qd (loop $ql
      (br_if $qd (i32.ge_u (local.get $i0) (local.get $m)))
      (local.set $lim (i32.sub (local.get $m) (local.get $i0)))
      (local.set $kk (i32.const 0))
      (block $kd (loop $kl
        (br_if $kd (i32.ge_u (local.get $kk) (local.get $k)))
        (local.set $src (i32.add (local.get $a)
          (i32.shl (i32.add (i32.mul (local.get $i0) (local.get $rs)) (i32.mul (local.get $kk) (local.get $cs))) (i32.const 2))))
        (if (i32.and (i32.ge_u (local.get $lim) (i32.const 4)) (i32.eq (local.get $rs) (i32.const 1)))
          (then
            ;; A stored transposed ([k, m]): the panel's 4 rows at one k are adjacent
            (v128.store (local.get $dst) (v128.load (local.get $src))))
          (else (if (i32.and (i32.and (i32.ge_u (local.get $lim) (i32.const 4)) (i32.eq (local.get $cs) (i32.const 1)))
                             (i32.le_u (i32.add (local.get $kk) (i32.const 4)) (local.get $k)))
          (then
            (call $tr4 ${range(4).map((r) => `(v128.load (i32.add (local.get $src) (i32.mul (i32.const ${r}) (local.get $rsb))))`).join(' ')}
              (local.get $dst) (i32.const ${4 * MR}))
            (local.set $dst (i32.add (local.get $dst) (i32.const ${4 * MR * 3})))
            (local.set $kk (i32.add (local.get $kk) (i32.const 3))))
          (else
        (local.set $r (i32.const 0))
        (block $rd (loop $rl
          (br_if $rd (i32.ge_u (local.get $r) (i32.const ${MR})))
          (f32.store (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2)))
            (if (result f32) (i32.lt_u (local.get $r) (local.get $lim))
              (then (f32.load (local.get $src)))
              (else (f32.const 0))))
          (local.set $src (i32.add (local.get $src) (local.get $rsb)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rl)))))))
        (local.set $dst (i32.add (local.get $dst) (i32.const ${4 * MR})))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kl)))
      (local.set $i0 (i32.add (local.get $i0) (i32.const ${MR})))
      (br $ql)))
  )

  (func (export "gemm") (param $a i32) (param $b i32) (param $c i32) (param $scratch i32)
      (param $batch i32) (param $m i32) (param $k i32) (param $n i32)
      (param $aBS i32) (param $bBS i32) (param $aRS i32) (param $aCS i32) (param $bRS i32) (param $bCS i32)
    (local $e i32) (local $packA i32) (local $packB i32) (local $tile i32) (local $ce i32)
    (local $j0 i32) (local $i0 i32) (local $pa i32) (local $pb i32) (local $pbPanel i32) (local $cp i32)
    (local $kk i32) (local $rowBytes i32) (local $aPanelBytes i32) (local $bPanelBytes i32) (local $r i32) (local $col i32)
    (local $rows i32) (local $cols i32)
    (local $b0 v128) (local $b1 v128) (local $av v128)
    ${acc.map((a) => `(local ${a} v128)`).join(' ')}
    (local.set $rowBytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $aPanelBytes (i32.mul (local.get $k) (i32.const ${4 * MR})))
    (local.set $bPanelBytes (i32.mul (local.get $k) (i32.const ${4 * NR})))
    (local.set $packA (local.get $scratch))
    (local.set $packB (i32.add (local.get $packA)
      (i32.mul (i32.div_u (i32.add (local.get $m) (i32.const ${MR - 1})) (i32.const ${MR})) (local.get $aPanelBytes))))
    (local.set $tile (i32.add (local.get $packB)
      (i32.mul (i32.shr_u (i32.add (local.get $n) (i32.const 7)) (i32.const 3)) (local.get $bPanelBytes))))
    (block $ed (loop $el
      (br_if $ed (i32.ge_u (local.get $e) (local.get $batch)))
      ;; a broadcast operand (batch stride 0) is packed once
      (if (i32.or (i32.eqz (local.get $e)) (i32.ne (local.get $aBS) (i32.const 0)))
        (then (call $packA (i32.add (local.get $a) (i32.shl (i32.mul (local.get $e) (local.get $aBS)) (i32.const 2)))
          (local.get $aRS) (local.get $aCS) (local.get $m) (local.get $k) (local.get $packA))))
      (if (i32.or (i32.eqz (local.get $e)) (i32.ne (local.get $bBS) (i32.const 0)))
        (then (call $packB (i32.add (local.get $b) (i32.shl (i32.mul (local.get $e) (local.get $bBS)) (i32.const 2)))
          (local.get $bRS) (local.get $bCS) (local.get $k) (local.get $n) (local.get $packB))))
      (local.set $ce (i32.add (local.get $c) (i32.mul (i32.mul (local.get $e) (local.get $m)) (local.get $rowBytes))))
      (local.set $j0 (i32.const 0))
      (local.set $pbPanel (local.get $packB))
      (block $jd (loop $jl
        (br_if $jd (i32.ge_u (local.get $j0) (local.get $n)))
        (local.set $i0 (i32.const 0))
        (local.set $pa (local.get $packA))
        (block $id (loop $il
          (br_if $id (i32.ge_u (local.get $i0) (local.get $m)))
          (local.set $pb (local.get $pbPanel))
          ${zero}
          (local.set $kk (local.get $k))
          (loop $kl
            (local.set $b0 (v128.load (local.get $pb)))
            (local.set $b1 (v128.load offset=16 (local.get $pb)))
            ${fma}
            (local.set $pa (i32.add (local.get $pa) (i32.const ${4 * MR})))
            (local.set $pb (i32.add (local.get $pb) (i32.const ${4 * NR})))
            (br_if $kl (local.tee $kk (i32.sub (local.get $kk) (i32.const 1)))))
          (local.set $cp (i32.add (local.get $ce)
            (i32.add (i32.mul (local.get $i0) (local.get $rowBytes)) (i32.shl (local.get $j0) (i32.const 2)))))
          (if (i32.and (i32.le_u (i32.add (local.get $i0) (i32.const ${MR})) (local.get $m))
                       (i32.le_u (i32.add (local.get $j0) (i32.const ${NR})) (local.get $n)))
            (then
          ${storeFull})
            (else
          ${storeTile}
              ;; partial tile: copy the rows < m and columns < n out of the tile
              (local.set $rows (i32.sub (local.get $m) (local.get $i0)))
              (if (i32.gt_u (local.get $rows) (i32.const ${MR})) (then (local.set $rows (i32.const ${MR}))))
              (local.set $cols (i32.sub (local.get $n) (local.get $j0)))
              (if (i32.gt_u (local.get $cols) (i32.const ${NR})) (then (local.set $cols (i32.const ${NR}))))
              (local.set $r (i32.const 0))
              (block $rd (loop $rl
                (br_if $rd (i32.ge_u (local.get $r) (local.get $rows)))
                (local.set $col (i32.const 0))
                (block $cd (loop $cl
                  (br_if $cd (i32.ge_u (local.get $col) (local.get $cols)))
                  (f32.store
                    (i32.add (i32.add (local.get $cp) (i32.mul (local.get $r) (local.get $rowBytes))) (i32.shl (local.get $col) (i32.const 2)))
                    (f32.load (i32.add (local.get $tile) (i32.shl (i32.add (i32.mul (local.get $r) (i32.const ${NR})) (local.get $col)) (i32.const 2)))))
                  (local.set $col (i32.add (local.get $col) (i32.const 1)))
                  (br $cl)))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $rl)))))
          (local.set $i0 (i32.add (local.get $i0) (i32.const ${MR})))
          (br $il)))
        (local.set $pbPanel (i32.add (local.get $pbPanel) (local.get $bPanelBytes)))
        (local.set $j0 (i32.add (local.get $j0) (i32.const ${NR})))
        (br $jl)))
      (local.set $e (i32.add (local.get $e) (i32.const 1)))
      (br $el)))
  )
)
`;
}

/** The module's binary for an unshared or a shared (threaded build) memory. */
export async function gemmBinary(shared) {
  return assemble('gemm.wat', gemmWat(shared));
}

export async function generated() {
  const [plain, shared] = [await gemmBinary(false), await gemmBinary(true)];
  return `// Generated by packages/clip-core/scripts/gemm-wasm.mjs (the WebAssembly text is there): do not edit.
/** Rows per micro-tile of the wasm GEMM; its scratch needs ceil(m/MR)·MR·k + ceil(n/8)·8·k + MR·8 floats. */
export const GEMM_MR = ${MR};
/** The module for the single-threaded build's memory, base64. */
export const GEMM_WASM = '${plain.toString('base64')}';
/** The same module importing a shared memory (the threaded build), base64. */
export const GEMM_WASM_SHARED = '${shared.toString('base64')}';
`;
}

await writeWhenRun(import.meta.url, '../src/kernels/gemm-wasm-bytes.ts', generated);
