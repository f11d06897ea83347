// Results that share one buffer (here the same value returned twice) are
// all copied before the buffer is freed, and it is freed once.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "import numpy as np; np.savez('%t/in.npz', x=np.arange(8, dtype=np.float32).reshape(2,4))"
// RUN: quant-run %s -i %t/in.npz --samples -o %t/out.npz --quiet
// RUN: %python -c "import numpy as np; a = np.load('%t/out.npz'); x = np.arange(8, dtype=np.float32).reshape(2,4); assert sorted(a.files) == ['first', 'second'], a.files; [np.testing.assert_array_equal(a[k], x + x) for k in a.files]"

func.func @main(%x: tensor<4xf32> {qnt.name = "x"}) -> (tensor<4xf32> {qnt.name = "first"}, tensor<4xf32> {qnt.name = "second"}) {
  %y = qnt.add %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %y, %y : tensor<4xf32>, tensor<4xf32>
}
