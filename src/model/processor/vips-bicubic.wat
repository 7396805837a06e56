(module
  ;; libvips' bicubic affine resize, the two separable passes (see vips-resize.ts for the coordinates and weights).
  (memory (export "memory") 1)

  ;; One source row (padded: 3 zero pixels each side, plus a slack byte) through each output column's stencil.
  ;; colAt[x]: byte offset of the stencil's first pixel in the padded row, or -1 (column off the image: zeros).
  ;; weights[x]: 4 i32. out[x]: 3 i32 (a 4th lane is written into the next column's first and then overwritten).
  (func (export "horizontal") (param $row i32) (param $colAt i32) (param $weights i32) (param $out i32) (param $n i32)
    (local $x i32) (local $b i32) (local $w i32) (local $acc v128)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $x) (local.get $n)))
        (local.set $b (i32.load (i32.add (local.get $colAt) (i32.shl (local.get $x) (i32.const 2)))))
        (if (i32.lt_s (local.get $b) (i32.const 0))
          (then (v128.store (local.get $out) (v128.const i32x4 0 0 0 0)))
          (else
            (local.set $b (i32.add (local.get $row) (local.get $b)))
            (local.set $w (i32.add (local.get $weights) (i32.shl (local.get $x) (i32.const 4))))
            (local.set $acc
              (i32x4.add
                (i32x4.add
                  (i32x4.mul (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $b))))
                             (i32x4.splat (i32.load (local.get $w))))
                  (i32x4.mul (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero offset=3 (local.get $b))))
                             (i32x4.splat (i32.load offset=4 (local.get $w)))))
                (i32x4.add
                  (i32x4.mul (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero offset=6 (local.get $b))))
                             (i32x4.splat (i32.load offset=8 (local.get $w))))
                  (i32x4.mul (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero offset=9 (local.get $b))))
                             (i32x4.splat (i32.load offset=12 (local.get $w)))))))
            (v128.store (local.get $out)
              (i32x4.shr_s (i32x4.add (local.get $acc) (v128.const i32x4 2048 2048 2048 2048)) (i32.const 12)))))
        (local.set $out (i32.add (local.get $out) (i32.const 12)))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br $next))))

  ;; Four horizontal passes through one output row's weights, rounded, clipped to bytes (saturating narrows), 16 at a time.
  (func (export "vertical") (param $r0 i32) (param $r1 i32) (param $r2 i32) (param $r3 i32)
        (param $c0 i32) (param $c1 i32) (param $c2 i32) (param $c3 i32) (param $out i32) (param $n i32)
    (local $i i32) (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $o i32)
    (local.set $w0 (i32x4.splat (local.get $c0)))
    (local.set $w1 (i32x4.splat (local.get $c1)))
    (local.set $w2 (i32x4.splat (local.get $c2)))
    (local.set $w3 (i32x4.splat (local.get $c3)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_s
              (call $tap4 (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3) (local.get $o) (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3))
              (call $tap4 (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3) (i32.add (local.get $o) (i32.const 16)) (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3)))
            (i16x8.narrow_i32x4_s
              (call $tap4 (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3) (i32.add (local.get $o) (i32.const 32)) (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3))
              (call $tap4 (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3) (i32.add (local.get $o) (i32.const 48)) (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; Four i32 lanes of (r0*c0 + r1*c1 + r2*c2 + r3*c3 + 2048) >> 12 at byte offset $o of each row.
  (func $tap4 (param $r0 i32) (param $r1 i32) (param $r2 i32) (param $r3 i32) (param $o i32)
        (param $w0 v128) (param $w1 v128) (param $w2 v128) (param $w3 v128) (result v128)
    (i32x4.shr_s
      (i32x4.add
        (i32x4.add
          (i32x4.add (i32x4.mul (v128.load (i32.add (local.get $r0) (local.get $o))) (local.get $w0))
                     (i32x4.mul (v128.load (i32.add (local.get $r1) (local.get $o))) (local.get $w1)))
          (i32x4.add (i32x4.mul (v128.load (i32.add (local.get $r2) (local.get $o))) (local.get $w2))
                     (i32x4.mul (v128.load (i32.add (local.get $r3) (local.get $o))) (local.get $w3))))
        (v128.const i32x4 2048 2048 2048 2048))
      (i32.const 12)))
)
