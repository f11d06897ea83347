module {
  func.func @main(%ids: tensor<2x6xi64> {qnt.name = "ids", qnt.valid_range = array<i64: 0, 40>}, %padding: tensor<2x6xi1> {qnt.name = "padding"}) -> tensor<2x3xf32> {
    %shape = "tosa.const_shape"() {values = dense<[1, 12]> : tensor<2xindex>} : () -> !tosa.shape<2>
    %emb = "tosa.reshape"(%ids, %shape) : (tensor<2x6xi64>, !tosa.shape<2>) -> tensor<1x12xi64> loc("emb")
    %emb_1 = "tosa.clamp"(%emb) {min_val = 0 : i64, max_val = 39 : i64} : (tensor<1x12xi64>) -> tensor<1x12xi64> loc("emb")
    %emb_2 = "tosa.cast"(%emb_1) : (tensor<1x12xi64>) -> tensor<1x12xi32> loc("emb")
    %emb.weight = "tosa.const"() {values = dense<"0x000000000000000000000000000000001545593f8327313f6dcca1bec15f07c03801a53ef4b4a1bfff30b33ebbc39d3e776ff53d936b9e3f8ef28e3f7c367dbec223adbf4614d9bf0410113f5d234b3f8b4d193f5b0dc7bfcac6aebe4e2fed3f6b0c403f2be315bfeb8e31bea4e13b3ec0d6b13f000dcb3f9c40723f33fb57bfc8131dbf6467013d2840fcbe70607e3ed01fe13ed637e63df80a243f3cdfe13eb987d1bd9cdd4a3f534f94be1712573d2fda053f55571340b704bcbf9e18cbbf9f4f2cbfde715f3ff415873faa1c363e10dd6bbe0894c8be5d150b3f1752cabe9476e4be24783e3f75afc23fad455a40d9fdc3bf23f89dbfc2ece83ffc300dbf3eba11bf3f836b3f392f8e3f981aa53fce34bdbf8b4d2440c23cf2be4fcdab3ec18dd0bf00bc0cbfd6acf5be42d6ffbed09288bf57b68e3f2c0c10bede454e3f5c2dbfbd86e22f3fd69b56bf25c9693a5f86573f47d1ccbe170d853fd85fb73eace77bbe6e5c134031dbf0bf90ae4bbddcc185bf3ddd74bfb458093d3cc8353fc5abd23f041aaebfe16ab03e0d16053fad4027c01326d9bf37b869be43568f3e46da7c3eef769d3d190fad3e59a7e83e0ff4e93efa885dbfcc03483f12426dbff01560be1cd81bc0555495bd55350bbd9967763f2ec6b23eefe46bbf812c66bd2b691fbffe6cedbef7fcf53f731acebe95c0fd3da017953f35626c3fe492b13fea2462bfd47bd6be1c094ebfcbcb103fdb401c3f5c0bef3e22aff93f9d1388bff75c9ebd6a62ee3dc80f18bf0a399fbff115d1bd504b84bf3212a0be30af7b3ebdef84beb25af23d74d0793ea211953f41c0933e24f0c53eb3e34dbeb483f1bdd4cf443e13ac45bf843ef3bf4fd0053e9c4c34bf1b23a13e9a2b213e434ec53e"> : tensor<1x40x4xf32>} : () -> tensor<1x40x4xf32> loc("emb")
    %emb_3 = "tosa.gather"(%emb.weight, %emb_2) : (tensor<1x40x4xf32>, tensor<1x12xi32>) -> tensor<1x12x4xf32> loc("emb")
    %shape_1 = "tosa.const_shape"() {values = dense<[2, 6, 4]> : tensor<3xindex>} : () -> !tosa.shape<3>
    %emb_4 = "tosa.reshape"(%emb_3, %shape_1) : (tensor<1x12x4xf32>, !tosa.shape<3>) -> tensor<2x6x4xf32> loc("emb")
    %shape_2 = "tosa.const_shape"() {values = dense<[2, 6, 1]> : tensor<3xindex>} : () -> !tosa.shape<3>
    %unsqueeze = "tosa.reshape"(%padding, %shape_2) : (tensor<2x6xi1>, !tosa.shape<3>) -> tensor<2x6x1xi1> loc("unsqueeze")
    %scalar = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
    %shape_3 = "tosa.const_shape"() {values = dense<[1, 1, 1]> : tensor<3xindex>} : () -> !tosa.shape<3>
    %masked_fill = "tosa.reshape"(%scalar, %shape_3) : (tensor<1xf32>, !tosa.shape<3>) -> tensor<1x1x1xf32> loc("masked_fill")
    %masked_fill_1 = "tosa.select"(%unsqueeze, %masked_fill, %emb_4) : (tensor<2x6x1xi1>, tensor<1x1x1xf32>, tensor<2x6x4xf32>) -> tensor<2x6x4xf32> loc("masked_fill")
    %sum_1 = "tosa.reduce_sum"(%masked_fill_1) {axis = 1 : i32} : (tensor<2x6x4xf32>) -> tensor<2x1x4xf32> loc("sum_1")
    %shape_4 = "tosa.const_shape"() {values = dense<[2, 4]> : tensor<2xindex>} : () -> !tosa.shape<2>
    %sum_1_1 = "tosa.reshape"(%sum_1, %shape_4) : (tensor<2x1x4xf32>, !tosa.shape<2>) -> tensor<2x4xf32> loc("sum_1")
    %fc.weight = "tosa.const"() {values = dense<"0xf03cc5bd283ca0bd3a6ae6be100ec9bd80e1d33bc0360abdbab8e5beb89668bea221e13e440addbeb8de403e38d750be"> : tensor<1x4x3xf32>} : () -> tensor<1x4x3xf32> loc("fc")
    %shape_5 = "tosa.const_shape"() {values = dense<[1, 2, 4]> : tensor<3xindex>} : () -> !tosa.shape<3>
    %fc = "tosa.reshape"(%sum_1_1, %shape_5) : (tensor<2x4xf32>, !tosa.shape<3>) -> tensor<1x2x4xf32> loc("fc")
    %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
    %fc_1 = "tosa.matmul"(%fc, %fc.weight, %zp, %zp) : (tensor<1x2x4xf32>, tensor<1x4x3xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x2x3xf32> loc("fc")
    %shape_6 = "tosa.const_shape"() {values = dense<[2, 3]> : tensor<2xindex>} : () -> !tosa.shape<2>
    %fc_2 = "tosa.reshape"(%fc_1, %shape_6) : (tensor<1x2x3xf32>, !tosa.shape<2>) -> tensor<2x3xf32> loc("fc")
    %fc.bias = "tosa.const"() {values = dense<"0x362be73e386c393eae07e7be"> : tensor<1x3xf32>} : () -> tensor<1x3xf32> loc("fc")
    %fc_3 = "tosa.add"(%fc_2, %fc.bias) : (tensor<2x3xf32>, tensor<1x3xf32>) -> tensor<2x3xf32> loc("fc")
    return %fc_3 : tensor<2x3xf32>
  }
}
