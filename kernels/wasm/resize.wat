;; Pillow's fixed-point BICUBIC passes (src/libImaging/Resample.c, 8 bits per channel) in WebAssembly SIMD.
;; server/src/engine/image/resize-bands.ts drives them row by row; scripts/build-wasm.mjs assembles this file
;; into resize-wasm.ts (npm run build:wasm), and a unit test checks that the two agree.
;;
;; Arithmetic is Pillow's: int32 sums starting at HALF = 1 << 21, each sample (0..255) times a weight scaled by
;; 2^22, then `sum >> 22` clipped to [0, 255]. i32x4 adds and multiplies wrap like the C code's int; the clip is two
;; saturating narrows (i32 -> i16 keeps every value a sum can take after the shift, i16 -> u8 clips to [0, 255]).
;;
;; Memory: one shared memory, imported; every pointer is a byte offset into it. Reads may go up to 8 bytes past the
;; last sample of a source row (the caller pads the source); writes never go past the row being written, so
;; threads that write neighbouring rows of one output never touch each other's bytes.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; Horizontal pass over one row: $outW pixels of 3 bytes at $dst from pixels of $ps (3 or 4) bytes at $src,
  ;; the first three of which are R, G, B. Pixel xx reads the $n pixels from $src + starts[xx] * $ps with weights
  ;; [xx * $n, xx * $n + $n) of $weights (int32 each). 5 taps (shrinking by up to 1.25x: a 4K screenshot to the
  ;; model's grid) and 4 (every enlargement) have loops of their own, unrolled.
  (func (export "hrow") (param $src i32) (param $ps i32) (param $starts i32) (param $weights i32) (param $n i32)
                        (param $dst i32) (param $outW i32)
    (local $xx i32) (local $p i32) (local $k i32) (local $i i32) (local $acc v128)
    (local.set $k (local.get $weights))
    (block $done
      (loop $pixels
        (br_if $done (i32.ge_u (local.get $xx) (local.get $outW)))
        (local.set $p (i32.add (local.get $src)
          (i32.mul (i32.load (i32.add (local.get $starts) (i32.shl (local.get $xx) (i32.const 2)))) (local.get $ps))))
        (local.set $acc (i32x4.splat (i32.const 2097152)))
        (block $summed
          (if (i32.eq (local.get $n) (i32.const 5))
            (then
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=0 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=4 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=8 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=12 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=16 (local.get $k)))))
              (local.set $k (i32.add (local.get $k) (i32.const 20)))
              (br $summed)))
          (if (i32.eq (local.get $n) (i32.const 4))
            (then
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=0 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=4 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=8 (local.get $k)))))
              (local.set $p (i32.add (local.get $p) (local.get $ps)))
              (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=12 (local.get $k)))))
              (local.set $k (i32.add (local.get $k) (i32.const 16)))
              (br $summed)))
          (local.set $i (i32.const 0))
          (loop $taps
            (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (i32x4.extend_low_i16x8_u (v128.load8x8_u (local.get $p))) (v128.load32_splat offset=0 (local.get $k)))))
            (local.set $p (i32.add (local.get $p) (local.get $ps)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $taps (i32.lt_u (local.get $i) (local.get $n)))))
        ;; The sums -> 3 bytes: four written (the fourth is the next pixel's R, written over next), exactly three at
        ;; the row's end.
        (local.set $acc (i32x4.shr_s (local.get $acc) (i32.const 22)))
        (local.set $acc (i16x8.narrow_i32x4_s (local.get $acc) (local.get $acc)))
        (local.set $acc (i8x16.narrow_i16x8_u (local.get $acc) (local.get $acc)))
        (local.set $p (i32.add (local.get $dst) (i32.mul (local.get $xx) (i32.const 3))))
        (local.set $xx (i32.add (local.get $xx) (i32.const 1)))
        (if (i32.lt_u (local.get $xx) (local.get $outW))
          (then (v128.store32_lane 0 (local.get $p) (local.get $acc)))
          (else
            (v128.store16_lane 0 (local.get $p) (local.get $acc))
            (v128.store8_lane 2 (i32.add (local.get $p) (i32.const 2)) (local.get $acc))))
        (br $pixels))))

  ;; Vertical pass, 16 bytes of one output row: dst[c + j] for j < 16 from rows ptrs[0 .. $n) (int32 byte offsets)
  ;; at the same column, weights[0 .. $n).
  (func $column16 (param $ptrs i32) (param $weights i32) (param $n i32) (param $dst i32) (param $c i32)
    (local $i i32) (local $w v128) (local $v v128) (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $a0 (i32x4.splat (i32.const 2097152)))
    (local.set $a1 (local.get $a0))
    (local.set $a2 (local.get $a0))
    (local.set $a3 (local.get $a0))
    (loop $taps
      (local.set $w (v128.load32_splat (i32.add (local.get $weights) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $v (v128.load (i32.add (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2))))
                                        (local.get $c))))
      (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
      (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
      (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w))))
      (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w))))
      (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w))))
      (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $taps (i32.lt_u (local.get $i) (local.get $n))))
    (v128.store (i32.add (local.get $dst) (local.get $c))
      (i8x16.narrow_i16x8_u
        (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
        (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22))))))

;; Vertical pass over one output row of $len bytes at $dst, from the rows at ptrs[0 .. $n) with weights[0 .. $n).
  ;; Up to 5 taps (every enlargement, and shrinking by up to 1.25x), the loop over 16-byte blocks keeps the rows and
  ;; weights in locals (missing taps: weight 0, which adds nothing to an integer sum); more taps go through
  ;; $column16. A row of 16 bytes or more ends with one block aligned to its end (overlapping the one before, with
  ;; the same values there); a shorter one is done a byte at a time.
  (func (export "vrow") (param $ptrs i32) (param $weights i32) (param $n i32) (param $dst i32) (param $len i32)
    (local $c i32) (local $i i32) (local $acc i32) (local $last i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $r4 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $w4 v128)
    (local $v v128) (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (if (i32.lt_u (local.get $len) (i32.const 16))
      (then
        (block $done
          (loop $bytes
            (br_if $done (i32.ge_u (local.get $c) (local.get $len)))
            (local.set $acc (i32.const 2097152))
            (local.set $i (i32.const 0))
            (loop $taps
              (local.set $acc (i32.add (local.get $acc)
                (i32.mul
                  (i32.load8_u (i32.add (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2))))
                                        (local.get $c)))
                  (i32.load (i32.add (local.get $weights) (i32.shl (local.get $i) (i32.const 2)))))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $taps (i32.lt_u (local.get $i) (local.get $n))))
            (local.set $acc (i32.shr_s (local.get $acc) (i32.const 22)))
            (i32.store8 (i32.add (local.get $dst) (local.get $c))
              (select (i32.const 0)
                (select (i32.const 255) (local.get $acc) (i32.gt_s (local.get $acc) (i32.const 255)))
                (i32.lt_s (local.get $acc) (i32.const 0))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $bytes)))
        (return)))
    (local.set $last (i32.sub (local.get $len) (i32.const 16)))
    (if (i32.gt_u (local.get $n) (i32.const 5))
      (then
        (block $done
          (loop $blocks
            (call $column16 (local.get $ptrs) (local.get $weights) (local.get $n) (local.get $dst) (local.get $c))
            (br_if $done (i32.ge_u (local.get $c) (local.get $last)))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (if (i32.gt_u (local.get $c) (local.get $last)) (then (local.set $c (local.get $last))))
            (br $blocks)))
        (return)))
    ;; Up to 5 taps: rows and weights in locals; taps past $n read row 0 with weight 0.
    (local.set $r0 (i32.load (local.get $ptrs)))
    (local.set $w0 (v128.load32_splat (local.get $weights)))
    (local.set $r1 (local.get $r0)) (local.set $r2 (local.get $r0)) (local.set $r3 (local.get $r0)) (local.set $r4 (local.get $r0))
    (if (i32.gt_u (local.get $n) (i32.const 1)) (then
      (local.set $r1 (i32.load offset=4 (local.get $ptrs)))
      (local.set $w1 (v128.load32_splat offset=4 (local.get $weights)))))
    (if (i32.gt_u (local.get $n) (i32.const 2)) (then
      (local.set $r2 (i32.load offset=8 (local.get $ptrs)))
      (local.set $w2 (v128.load32_splat offset=8 (local.get $weights)))))
    (if (i32.gt_u (local.get $n) (i32.const 3)) (then
      (local.set $r3 (i32.load offset=12 (local.get $ptrs)))
      (local.set $w3 (v128.load32_splat offset=12 (local.get $weights)))))
    (if (i32.gt_u (local.get $n) (i32.const 4)) (then
      (local.set $r4 (i32.load offset=16 (local.get $ptrs)))
      (local.set $w4 (v128.load32_splat offset=16 (local.get $weights)))))
    (block $done
      (loop $blocks
        (local.set $a0 (i32x4.splat (i32.const 2097152)))
        (local.set $a1 (local.get $a0))
        (local.set $a2 (local.get $a0))
        (local.set $a3 (local.get $a0))
        (local.set $v (v128.load (i32.add (local.get $r0) (local.get $c))))
        (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
        (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w0))))
        (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w0))))
        (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w0))))
        (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w0))))
        (local.set $v (v128.load (i32.add (local.get $r1) (local.get $c))))
        (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
        (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w1))))
        (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w1))))
        (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w1))))
        (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w1))))
        (local.set $v (v128.load (i32.add (local.get $r2) (local.get $c))))
        (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
        (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w2))))
        (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w2))))
        (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w2))))
        (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w2))))
        (local.set $v (v128.load (i32.add (local.get $r3) (local.get $c))))
        (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
        (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w3))))
        (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w3))))
        (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w3))))
        (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w3))))
        (local.set $v (v128.load (i32.add (local.get $r4) (local.get $c))))
        (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
        (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w4))))
        (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w4))))
        (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w4))))
        (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w4))))
        (v128.store (i32.add (local.get $dst) (local.get $c))
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
            (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22)))))
        (br_if $done (i32.ge_u (local.get $c) (local.get $last)))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (if (i32.gt_u (local.get $c) (local.get $last)) (then (local.set $c (local.get $last))))
        (br $blocks))))
)
