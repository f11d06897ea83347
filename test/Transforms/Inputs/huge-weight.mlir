// A 40 GB splat weight: folding it would materialize every element.
func.func @main(%x: tensor<1x1x100000xf32>) -> tensor<1x1x100000xf32> {
  %w = "tosa.const"() {values = dense<0.5> : tensor<1x100000x100000xf32>} : () -> tensor<1x100000x100000xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x, %w, %zp, %zp : (tensor<1x1x100000xf32>, tensor<1x100000x100000xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x100000xf32>
  return %mm : tensor<1x1x100000xf32>
}
