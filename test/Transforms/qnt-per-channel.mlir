// RUN: quant-opt %s --qnt-per-channel --split-input-file | FileCheck %s --check-prefix=ONEDNN
// RUN: quant-opt %s --qnt-per-channel="backend=xnnpack" --split-input-file | FileCheck %s --check-prefix=XNN
// RUN: not quant-opt %s --qnt-per-channel="backend=tpu" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: unknown backend 'tpu'; expected one of: onednn, xnnpack

!q = !quant.uniform<u8:f32, 0.1:10>
!wt = !quant.uniform<i8:f32, 0.0078431377187371254>
!wc = !quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>

// Per-tensor linear weight: oneDNN has per-channel FC, so the scales become
// max|w[c]| / 127.5 per output channel; XNNPACK has not, it stays.
// ONEDNN-LABEL: func.func @linear_per_tensor
// ONEDNN: %[[Q:.*]] = quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>>
// ONEDNN: %[[D:.*]] = quant.dcast %[[Q]]
// ONEDNN: qnt.linear %{{.*}}, %[[D]]
// XNN-LABEL: func.func @linear_per_tensor
// XNN: quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.0078431377187371254>>
// XNN-NOT: quant.qcast
func.func @linear_per_tensor(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = arith.constant dense<[[1.0, 0.5], [0.25, -0.1]]> : tensor<2x2xf32>
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wt>
  %wd = quant.dcast %wq : tensor<2x2x!wt> to tensor<2x2xf32>
  %y = qnt.linear %x, %wd : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

// -----

!wc = !quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>

// Per-channel linear weight on XNNPACK goes back to one scale,
// max|w| / 127.5; oneDNN keeps it.
// ONEDNN-LABEL: func.func @linear_per_channel
// ONEDNN: quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>>
// XNN-LABEL: func.func @linear_per_channel
// XNN: %[[Q:.*]] = quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.0078431377187371254>>
// XNN: %[[D:.*]] = quant.dcast %[[Q]]
// XNN: qnt.linear %{{.*}}, %[[D]]
func.func @linear_per_channel(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = arith.constant dense<[[1.0, 0.5], [0.25, -0.1]]> : tensor<2x2xf32>
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wc>
  %wd = quant.dcast %wq : tensor<2x2x!wc> to tensor<2x2xf32>
  %y = qnt.linear %x, %wd : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

// -----

!wt = !quant.uniform<i8<-127:127>:f32, 0.5>

// Convolutions are per channel on both backends; the storage range
// [-127, 127] is kept (max|w[c]| / 127).
// ONEDNN-LABEL: func.func @conv
// ONEDNN: quant.qcast %{{.*}} : tensor<2x1x1x1xf32> to tensor<2x1x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.015748031437397003,0.0078740157186985015}>>
// XNN-LABEL: func.func @conv
// XNN: quant.qcast %{{.*}} : tensor<2x1x1x1xf32> to tensor<2x1x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.015748031437397003,0.0078740157186985015}>>
func.func @conv(%x: tensor<1x2x2x1xf32>) -> tensor<1x2x2x2xf32> {
  %w = arith.constant dense<[[[[2.0]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>
  %wq = quant.qcast %w : tensor<2x1x1x1xf32> to tensor<2x1x1x1x!wt>
  %wd = quant.dcast %wq : tensor<2x1x1x1x!wt> to tensor<2x1x1x1xf32>
  %y = qnt.conv2d %x, %wd {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x2x2x1xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  return %y : tensor<1x2x2x2xf32>
}

// -----

!wt = !quant.uniform<i8:f32, 0.5>

// Negative: a weight computed at run time has no constant to re-quantize.
// ONEDNN-LABEL: func.func @runtime_weight
// ONEDNN: quant.qcast %arg1 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 5.000000e-01>>
// ONEDNN-NOT: quant.qcast
func.func @runtime_weight(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wt>
  %wd = quant.dcast %wq : tensor<2x2x!wt> to tensor<2x2xf32>
  %y = qnt.linear %x, %wd : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}
