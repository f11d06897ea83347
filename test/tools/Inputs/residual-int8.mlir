// A residual block in quantized form (u8 activations, per-channel s8
// weights): conv 3x3 -> depthwise 3x3 (+relu), their sum with relu, a max
// pool. Covers every kernel the XNNPACK backend serves.
!qin = !quant.uniform<u8:f32, 0.05:128>
!qa = !quant.uniform<u8:f32, 0.1:100>
!qb = !quant.uniform<u8:f32, 0.08:0>
!qs = !quant.uniform<u8:f32, 0.12:0>
!w1 = !quant.uniform<i8:f32:0, {0.00585796, 0.00421697, 0.00284956, 0.00288977, 0.002875, 0.00427829, 0.00380844, 0.00588095}>
!w2 = !quant.uniform<i8:f32:0, {0.0152082, 0.00627943, 0.00584627, 0.0123176, 0.0182151, 0.0196461, 0.0142649, 0.0131375}>
func.func @main(%x: tensor<1x8x8x4xf32> {qnt.name = "x"}) -> tensor<1x4x4x8xf32> {
  %xq = quant.qcast %x : tensor<1x8x8x4xf32> to tensor<1x8x8x4x!qin>
  %w1i = arith.constant dense<"0x2DB0F641C47C44E88A549673A5D8C759D90DBB4267A8D82FD9D2269ACEC98A15F45174467FD03041D3E45932749E14140F28A1428A3A00A1A04B7518247F4CF3389DA3010125B606A7697592D005EAAB3BA0F982C2682ABAA4E7F88C2FD3DC010FE4B60DFA2BD54CC58745B00075044DE53569CF1015643B98500EF6D6B1B2C62A2441E046DF81F233A523B1DE04E3AB4EF168164A00810BF3AC3B00983C03FAE3BF245FFC44D32F641552B31C8FAABB42A58BD7ACE98C83B4D1A13701A7942FABF4393D69CE9F99FE8384DF63EC8EF1A9C994E0C91B437935C46DBE8FE185446E0C7DD74EFAEECC3991191E16EF9A513DFAF7F63ED422E921657C7CFAC756A08EC83919D0AA93A937508C27F0DE7A0260F7AD59FE99C45370846B4D67A4577F"> : tensor<8x3x3x4xi8>
  %w1 = quant.scast %w1i : tensor<8x3x3x4xi8> to tensor<8x3x3x4x!w1>
  %b1 = arith.constant dense<"0x53010000A8FDFFFF8B050000D8F8FFFFA4FFFFFF54030000E0F8FFFF49FEFFFF"> : tensor<8xi32>
  %a = qnt.conv2d %xq, %w1, %b1 {dilation = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>} : (tensor<1x8x8x4x!qin>, tensor<8x3x3x4x!w1>, tensor<8xi32>) -> tensor<1x8x8x8x!qa>
  %w2i = arith.constant dense<"0x3E4658ACA18CE9550B376C26FE1DF069839C545A18B6B42F15369EC4A4A80ACAAA1804AF5B33ED84A08A0B9C2E4828BED6E2ADA323D9A20669A5814CA346FF367FD13F093E0252F1"> : tensor<8x3x3x1xi8>
  %w2 = quant.scast %w2i : tensor<8x3x3x1xi8> to tensor<8x3x3x1x!w2>
  %b2 = arith.constant dense<"0x73F9FFFF970700002CFAFFFF53030000A20400004EFFFFFF4DFCFFFF21FFFFFF"> : tensor<8xi32>
  %b = qnt.conv2d %a, %w2, %b2 {activation = #qnt.activation<relu>, dilation = array<i64: 1, 1>, groups = 8 : i64, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>} : (tensor<1x8x8x8x!qa>, tensor<8x3x3x1x!w2>, tensor<8xi32>) -> tensor<1x8x8x8x!qb>
  %s = qnt.add %a, %b {activation = #qnt.activation<relu>} : (tensor<1x8x8x8x!qa>, tensor<1x8x8x8x!qb>) -> tensor<1x8x8x8x!qs>
  %p = tosa.max_pool2d %s {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 0, 1, 0>} : (tensor<1x8x8x8x!qs>) -> tensor<1x4x4x8x!qs>
  %r = quant.dcast %p : tensor<1x4x4x8x!qs> to tensor<1x4x4x8xf32>
  return %r : tensor<1x4x4x8xf32>
}
