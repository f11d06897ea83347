// Entry functions take statically shaped tensors only.
func.func @main(%x: tensor<?xf32> {qnt.name = "x"}) -> tensor<?xf32> {
  return %x : tensor<?xf32>
}
