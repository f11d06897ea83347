// One observer at two sites (one id): its statistics cover both.
func.func @main(%x: tensor<1x4xf32> {qnt.name = "x"}) -> tensor<1x8xf32> {
  %0 = qnt.observe %x {id = "cat:out", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  %three = "tosa.const"() {values = dense<3.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %y = tosa.add %x, %three : (tensor<1x4xf32>, tensor<1x1xf32>) -> tensor<1x4xf32>
  %1 = qnt.observe %y {id = "cat:out", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  %c = tosa.concat %0, %1 {axis = 1 : i32} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x8xf32>
  return %c : tensor<1x8xf32>
}
