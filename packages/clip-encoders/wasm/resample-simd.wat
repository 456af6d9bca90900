;; Pillow's 8-bit separable resampling passes (libImaging/Resample.c, as transcribed in src/resample.ts)
;; with WebAssembly SIMD. Same integer arithmetic: int32 products of uint8 × 22-bit fixed-point weights,
;; rounding constant 2^21, arithmetic shift by 22, clamp to 0..255 (the saturating narrows) — so the
;; output is bit-identical to the JS transcription. Buffers need 16 bytes of slack at the end: loads
;; and stores run past row ends into bytes that are ignored or rewritten later (passes go row by row, upward).
(module
  (memory (export "memory") 1)

  ;; Horizontal pass on interleaved RGB: src inW×inH×3 → dst outW×inH×3.
  ;; starts/counts: i32 per output x; weights: i32 × stride per output x.
  (func (export "hpass")
    (param $src i32) (param $inW i32) (param $inH i32) (param $dst i32) (param $outW i32)
    (param $starts i32) (param $counts i32) (param $weights i32) (param $stride i32)
    (local $y i32) (local $x i32) (local $t i32) (local $n i32) (local $p i32) (local $kb i32)
    (local $row i32) (local $o i32) (local $acc v128) (local $half v128) (local $v v128)
    (local.set $half (i32x4.splat (i32.const 2097152)))
    (local.set $o (local.get $dst))
    (block $ydone
      (loop $yloop
        (br_if $ydone (i32.ge_u (local.get $y) (local.get $inH)))
        (local.set $row (i32.add (local.get $src) (i32.mul (i32.mul (local.get $y) (local.get $inW)) (i32.const 3))))
        (local.set $x (i32.const 0))
        (block $xdone
          (loop $xloop
            (br_if $xdone (i32.ge_u (local.get $x) (local.get $outW)))
            (local.set $n (i32.load (i32.add (local.get $counts) (i32.shl (local.get $x) (i32.const 2)))))
            (local.set $p (i32.add (local.get $row)
              (i32.mul (i32.load (i32.add (local.get $starts) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 3))))
            (local.set $kb (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $x) (local.get $stride)) (i32.const 2))))
            (local.set $acc (local.get $half))
            (local.set $t (i32.const 0))
            (block $tdone
              (loop $tloop
                (br_if $tdone (i32.ge_u (local.get $t) (local.get $n)))
                ;; [r, g, b, next r] as i32 lanes
                (local.set $v (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $p)))))
                (local.set $acc (i32x4.add (local.get $acc)
                  (i32x4.mul (local.get $v) (i32x4.splat (i32.load (local.get $kb))))))
                (local.set $p (i32.add (local.get $p) (i32.const 3)))
                (local.set $kb (i32.add (local.get $kb) (i32.const 4)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $tloop)))
            (local.set $acc (i32x4.shr_s (local.get $acc) (i32.const 22)))
            (local.set $acc (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_s (local.get $acc) (local.get $acc))
                                                   (i16x8.narrow_i32x4_s (local.get $acc) (local.get $acc))))
            ;; 4 bytes: r g b + one junk byte that the next pixel (or row) overwrites
            (v128.store32_lane 0 (local.get $o) (local.get $acc))
            (local.set $o (i32.add (local.get $o) (i32.const 3)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $xloop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $yloop))))

  ;; Vertical pass: src rows of rowLen bytes → outH rows; 16 bytes per step.
  (func (export "vpass")
    (param $src i32) (param $rowLen i32) (param $dst i32) (param $outH i32)
    (param $starts i32) (param $counts i32) (param $weights i32) (param $stride i32)
    (local $y i32) (local $i i32) (local $t i32) (local $n i32) (local $base i32) (local $kb i32) (local $p i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $half v128)
    (local $v v128) (local $lo v128) (local $hi v128) (local $w v128) (local $o i32)
    (local.set $half (i32x4.splat (i32.const 2097152)))
    (block $ydone
      (loop $yloop
        (br_if $ydone (i32.ge_u (local.get $y) (local.get $outH)))
        (local.set $n (i32.load (i32.add (local.get $counts) (i32.shl (local.get $y) (i32.const 2)))))
        (local.set $base (i32.add (local.get $src)
          (i32.mul (i32.load (i32.add (local.get $starts) (i32.shl (local.get $y) (i32.const 2)))) (local.get $rowLen))))
        (local.set $o (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $rowLen))))
        (local.set $i (i32.const 0))
        (block $idone
          (loop $iloop
            (br_if $idone (i32.ge_u (local.get $i) (local.get $rowLen)))
            (local.set $a0 (local.get $half))
            (local.set $a1 (local.get $half))
            (local.set $a2 (local.get $half))
            (local.set $a3 (local.get $half))
            (local.set $p (i32.add (local.get $base) (local.get $i)))
            (local.set $kb (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $y) (local.get $stride)) (i32.const 2))))
            (local.set $t (i32.const 0))
            (block $tdone
              (loop $tloop
                (br_if $tdone (i32.ge_u (local.get $t) (local.get $n)))
                (local.set $v (v128.load (local.get $p)))
                (local.set $w (i32x4.splat (i32.load (local.get $kb))))
                (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
                (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w))))
                (local.set $p (i32.add (local.get $p) (local.get $rowLen)))
                (local.set $kb (i32.add (local.get $kb) (i32.const 4)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $tloop)))
            (v128.store (i32.add (local.get $o) (local.get $i))
              (i8x16.narrow_i16x8_u
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $iloop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $yloop))))
)
