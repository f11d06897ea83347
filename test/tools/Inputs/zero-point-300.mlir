// A u8 zero point of 300 (upstream's type accepts it).
func.func @main(%x: tensor<1x4xf32> {qnt.name = "x"}) -> tensor<1x4xf32> {
  %q = quant.qcast %x : tensor<1x4xf32> to tensor<1x4x!quant.uniform<u8:f32, 0.1:300>>
  %d = quant.dcast %q : tensor<1x4x!quant.uniform<u8:f32, 0.1:300>> to tensor<1x4xf32>
  return %d : tensor<1x4xf32>
}
