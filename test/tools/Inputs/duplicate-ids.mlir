// One id is one observer: a second site with another kind is an error.
func.func @main(%x: tensor<1x4xf32> {qnt.name = "x"}) -> tensor<1x4xf32> {
  %0 = qnt.observe %x {id = "in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  %1 = qnt.observe %0 {id = "in", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  return %1 : tensor<1x4xf32>
}
