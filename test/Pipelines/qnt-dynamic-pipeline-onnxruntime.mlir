// RUN: quant-opt %s --qnt-dynamic-pipeline --split-input-file | FileCheck %s

// ONNX Runtime's dynamic form as import-onnx writes it: a linear whose
// weight fake quant carries the file's integers and per-column scales. The
// pipeline keeps both (no observer, no re-quantization with max|w| / 127.5)
// and, under ONNX Runtime's numerics, quantizes the input to
// DynamicQuantizeLinear's [0, 255] although the x86 preset reduces the range.
// CHECK-LABEL: func.func @main
// CHECK: %[[Q:.*]] = arith.constant dense<{{\[}}[2, -127], [1, 127]]> : tensor<2x2xi8>
// CHECK: %[[W:.*]] = quant.scast %[[Q]] : tensor<2x2xi8> to tensor<2x2x!quant.uniform<i8:f32:0, {5.000000e-01,2.500000e-01}>>
// CHECK: qnt.linear %arg0, %[[W]], %{{.*}} {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
// CHECK-NOT: qnt.observe
// CHECK-NOT: qnt.fake_quant
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @main(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
    %fw = arith.constant dense<[[1.0, -63.5], [0.25, 31.75]]> : tensor<2x2xf32>
    %w = qnt.fake_quant %fw {scale = array<f32: 0.5, 0.25>, zero_point = array<i64: 0, 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x2xf32>
    %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
    %y = qnt.linear %x, %w, %b : (tensor<1x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
    return %y : tensor<1x2xf32>
  }
}

// -----

// ONNX Runtime's ConvInteger as import-onnx writes it: the conv2d keeps the
// file's integers and scale, and its input is quantized per call.
// CHECK-LABEL: func.func @conv
// CHECK: %[[Q:.*]] = arith.constant dense<{{\[}}{{\[}}{{\[}}[2]]], {{\[}}{{\[}}[-127]]]]> : tensor<2x1x1x1xi8>
// CHECK: %[[W:.*]] = quant.scast %[[Q]] : tensor<2x1x1x1xi8> to tensor<2x1x1x1x!quant.uniform<i8:f32, 5.000000e-01>>
// CHECK: qnt.conv2d %arg0, %[[W]] {dilation = {{.*}}, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>
// CHECK-NOT: qnt.observe
// CHECK-NOT: qnt.fake_quant
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @conv(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
    %fw = arith.constant dense<[[[[1.0]]], [[[-63.5]]]]> : tensor<2x1x1x1xf32>
    %w = qnt.fake_quant %fw {scale = array<f32: 0.5>, zero_point = array<i64: 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>} : tensor<2x1x1x1xf32>
    %c = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>) -> tensor<1x4x4x2xf32>
    return %c : tensor<1x4x4x2xf32>
  }
}
