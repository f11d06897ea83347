func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = qnt.add %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = qnt.bogus %0
  return %0 : tensor<4xf32>
}
