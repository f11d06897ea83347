// A model that still observes (prepared, not folded).
func.func @main(%x: tensor<1x4xf32> {qnt.name = "x"}) -> tensor<1x4xf32> {
  %0 = qnt.observe %x {id = "in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}
