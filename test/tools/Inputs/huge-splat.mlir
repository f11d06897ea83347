// A 40 GB splat result: rejected before anything materializes it.
func.func @main() -> tensor<1x100000x100000xf32> {
  %c = arith.constant dense<1.0> : tensor<1x100000x100000xf32>
  return %c : tensor<1x100000x100000xf32>
}
