// Observers of data near +-FLT_MAX (quant-run-extreme-values.test).
func.func @main(%x: tensor<1x4xf32> {qnt.name = "x"}, %y: tensor<1x4xf32> {qnt.name = "y"}) -> (tensor<1x4xf32>, tensor<1x4xf32>) {
  %0 = qnt.observe %x {id = "hist", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  %1 = qnt.observe %y {id = "avg", kind = #qnt.observer<moving_average_minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  return %0, %1 : tensor<1x4xf32>, tensor<1x4xf32>
}
