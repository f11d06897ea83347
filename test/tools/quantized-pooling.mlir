// Quantized max pooling (u8, values above 127 included) picks exactly the
// integers numpy picks.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "import numpy as np; np.savez('%t/in.npz', x=np.random.RandomState(2).uniform(-1, 24, (1,6,6,3)).astype(np.float32))"
// RUN: quant-run %s -i %t/in.npz -o %t/out.npz
// RUN: %python -c "import numpy as np; x = np.load('%t/in.npz')['x']; q = np.clip(np.rint(x * np.float32(10)) + 10, 0, 255); p = q.reshape(1,3,2,3,2,3).max(axis=(2,4)); ref = (p - 10).astype(np.float32) * np.float32(0.1); y = np.load('%t/out.npz')['output']; assert q.max() > 127; assert np.array_equal(y, ref), (y, ref)"

!q = !quant.uniform<u8:f32, 0.1:10>
func.func @main(%x: tensor<1x6x6x3xf32> {qnt.name = "x"}) -> tensor<1x3x3x3xf32> {
  %q = quant.qcast %x : tensor<1x6x6x3xf32> to tensor<1x6x6x3x!q>
  %p = tosa.max_pool2d %q {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>} : (tensor<1x6x6x3x!q>) -> tensor<1x3x3x3x!q>
  %r = quant.dcast %p : tensor<1x3x3x3x!q> to tensor<1x3x3x3xf32>
  return %r : tensor<1x3x3x3xf32>
}
