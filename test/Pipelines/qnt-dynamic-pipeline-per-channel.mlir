// RUN: quant-opt %s --qnt-dynamic-pipeline="qconfig=x86 per-channel=true" | FileCheck %s
// RUN: quant-opt %s --qnt-dynamic-pipeline="qconfig=qnnpack per-channel=true" | FileCheck %s --check-prefix=QNNPACK
// RUN: quant-opt %s --qnt-dynamic-pipeline="qconfig=x86" | FileCheck %s --check-prefix=TENSOR

// per-channel=true: the linear's weight gets one scale per output channel
// (axis 0 of the [out, in] weight), max|w_c| / 127.5 as PyTorch's
// per_channel_dynamic_qconfig (PerChannelMinMaxObserver, qint8, symmetric):
// rows [1, 2] and [-4, 0.5] give 2 / 127.5 and 4 / 127.5, and the integers
// torch.quantize_per_channel gives ([[64, 127], [-127, 16]]). The input is
// still quantized per call, per tensor: [0, 127] on x86, [0, 255] on qnnpack.
// Without per-channel=true the weight has one scale, 4 / 127.5.
// CHECK-LABEL: func.func @main
// CHECK: %[[W:.*]] = arith.constant dense<{{\[\[}}64, 127], [-127, 16]]> : tensor<2x2xi8>
// CHECK: %[[Q:.*]] = quant.scast %[[W]] : tensor<2x2xi8> to tensor<2x2x!quant.uniform<i8:f32:0, {0.015686275437474251,0.031372550874948502}>>
// CHECK: qnt.linear %{{.*}}, %[[Q]], %{{.*}} {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2x!quant.uniform<i8:f32:0, {0.015686275437474251,0.031372550874948502}>>, tensor<2xf32>) -> tensor<1x2xf32>
// QNNPACK-LABEL: func.func @main
// QNNPACK: qnt.linear %{{.*}}, %{{.*}}, %{{.*}} {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2x!quant.uniform<i8:f32:0, {0.015686275437474251,0.031372550874948502}>>, tensor<2xf32>) -> tensor<1x2xf32>
// TENSOR-LABEL: func.func @main
// TENSOR: arith.constant dense<{{\[\[}}32, 64], [-127, 16]]> : tensor<2x2xi8>
// TENSOR: qnt.linear %{{.*}}, %{{.*}}, %{{.*}} {dynamic_qspec = {{.*}}} : (tensor<1x2xf32>, tensor<2x2x!quant.uniform<i8:f32, 0.031372550874948502>>, tensor<2xf32>) -> tensor<1x2xf32>
func.func @main(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %s3 = tosa.const_shape {values = dense<[1, 1, 2]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %x3 = tosa.reshape %x, %s3 : (tensor<1x2xf32>, !tosa.shape<3>) -> tensor<1x1x2xf32>
  %w = "tosa.const"() {values = dense<[[[1.0, -4.0], [2.0, 0.5]]]> : tensor<1x2x2xf32>} : () -> tensor<1x2x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x3, %w, %zp, %zp : (tensor<1x1x2xf32>, tensor<1x2x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x2xf32>
  %s2 = tosa.const_shape {values = dense<[1, 2]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %y = tosa.reshape %mm, %s2 : (tensor<1x1x2xf32>, !tosa.shape<2>) -> tensor<1x2xf32>
  %b = "tosa.const"() {values = dense<[[0.5, -0.5]]> : tensor<1x2xf32>} : () -> tensor<1x2xf32>
  %z = tosa.add %y, %b : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32>
  return %z : tensor<1x2xf32>
}
