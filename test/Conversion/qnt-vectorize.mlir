// RUN: quant-opt %s --qnt-vectorize --split-input-file --verify-diagnostics | FileCheck %s --enable-var-scope
// RUN: quant-opt %s --qnt-vectorize=parallel=false --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SEQ
// RUN: not quant-opt %s --qnt-vectorize=vector-size=0 --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: quant-opt %s --qnt-vectorize --one-shot-bufferize=bufferize-function-boundaries --cse --canonicalize --split-input-file | FileCheck %s --check-prefix=BUF
// Vector codegen of the generated loops: collapsed iteration spaces,
// parallel chunks (scf.forall), one vector per tile, no remainder loops.

// BAD: qnt-vectorize: vector-size must be >= 1, got 0

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>

// An elementwise op on 8x56x56x24 is one loop over 602112 elements: 64
// chunks of 9408, 147 vectors of 64 each.
// CHECK-LABEL: func.func @requantize
// CHECK-DAG: %[[A:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1, 2, 3]] : tensor<8x56x56x24xi8> into tensor<602112xi8>
// CHECK: scf.forall (%[[C:.*]]) = (0) to (602112) step (9408)
// CHECK: scf.for %[[V:.*]] = %c0 to %c9408 step %c64
// CHECK: vector.transfer_read %[[A]][%{{.*}}], %{{.*}} {in_bounds = [true]} : tensor<602112xi8>, vector<64xi8>
// CHECK: arith.sitofp %{{.*}} : vector<64xi32> to vector<64xf32>
// CHECK: arith.fptosi %{{.*}} : vector<64xf32> to vector<64xi32>
// CHECK: vector.transfer_write %{{.*}} : vector<64xi8>, tensor<9408xi8>
// CHECK: tensor.parallel_insert_slice
// CHECK-NOT: linalg.generic
// SEQ-LABEL: func.func @requantize
// SEQ-NOT: scf.forall
// SEQ: scf.for %{{.*}} = %c0 to %c602112 step %c64
// SEQ: vector<64xf32>
func.func @requantize(%a: tensor<8x56x56x24xi8>) -> tensor<8x56x56x24xi8> {
  %zp = arith.constant 59 : i32
  %m = arith.constant 0.3 : f32
  %e = tensor.empty() : tensor<8x56x56x24xi8>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a : tensor<8x56x56x24xi8>) outs(%e : tensor<8x56x56x24xi8>) {
  ^bb0(%x: i8, %o: i8):
    %0 = arith.extui %x : i8 to i32
    %1 = arith.subi %0, %zp : i32
    %2 = arith.sitofp %1 : i32 to f32
    %3 = arith.mulf %2, %m : f32
    %4 = arith.fptosi %3 : f32 to i32
    %5 = arith.trunci %4 : i32 to i8
    linalg.yield %5 : i8
  } -> tensor<8x56x56x24xi8>
  return %r : tensor<8x56x56x24xi8>
}

// -----

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#bc = affine_map<(d0, d1, d2, d3) -> (d0, 0, 0, d3)>

// Squeeze-excite scaling: the broadcast operand keeps (n, c), the spatial
// dimensions collapse; a chunk is one pixel row of 72 channels, two vectors.
// CHECK-LABEL: func.func @broadcast
// CHECK-DAG: tensor.collapse_shape %arg0 {{\[}}[0, 1, 2], [3]] : tensor<8x1x1x72xi8> into tensor<8x72xi8>
// CHECK-DAG: tensor.collapse_shape %arg1 {{\[}}[0], [1, 2], [3]] : tensor<8x28x28x72xi8> into tensor<8x784x72xi8>
// CHECK: scf.forall (%{{.*}}, %{{.*}}) in (8, 784)
// CHECK: scf.for %{{.*}} = %c0 to %c72 step %c36
// CHECK: arith.addi %{{.*}}, %{{.*}} : vector<36xi8>
func.func @broadcast(%a: tensor<8x1x1x72xi8>, %b: tensor<8x28x28x72xi8>) -> tensor<8x28x28x72xi8> {
  %e = tensor.empty() : tensor<8x28x28x72xi8>
  %r = linalg.generic {indexing_maps = [#bc, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a, %b : tensor<8x1x1x72xi8>, tensor<8x28x28x72xi8>) outs(%e : tensor<8x28x28x72xi8>) {
  ^bb0(%x: i8, %y: i8, %o: i8):
    %s = arith.addi %x, %y : i8
    linalg.yield %s : i8
  } -> tensor<8x28x28x72xi8>
  return %r : tensor<8x28x28x72xi8>
}

// -----

#pin = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 * 2 + d3, d2 * 2 + d4, d5)>
#pw = affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d4)>
#pout = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d5)>

// A pooling sum: too small to split, window dimensions tiled by one, the
// channels one vector accumulated in place.
// CHECK-LABEL: func.func @pool_sum
// CHECK-NOT: scf.forall
// CHECK: vector.transfer_read %{{.*}} : tensor<8x8x32xi8>, vector<32xi8>
// CHECK: arith.extui %{{.*}} : vector<32xi8> to vector<32xi32>
// CHECK: arith.addi %{{.*}} : vector<32xi32>
// CHECK-NOT: linalg.generic
func.func @pool_sum(%x: tensor<1x8x8x32xi8>, %w: tensor<2x2xi32>) -> tensor<1x4x4x32xi32> {
  %c0 = arith.constant 0 : i32
  %e = tensor.empty() : tensor<1x4x4x32xi32>
  %z = linalg.fill ins(%c0 : i32) outs(%e : tensor<1x4x4x32xi32>) -> tensor<1x4x4x32xi32>
  %r = linalg.generic {indexing_maps = [#pin, #pw, #pout], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]} ins(%x, %w : tensor<1x8x8x32xi8>, tensor<2x2xi32>) outs(%z : tensor<1x4x4x32xi32>) {
  ^bb0(%in: i8, %k: i32, %acc: i32):
    %v = arith.extui %in : i8 to i32
    %s = arith.addi %acc, %v : i32
    linalg.yield %s : i32
  } -> tensor<1x4x4x32xi32>
  return %r : tensor<1x4x4x32xi32>
}

// -----

// A table lookup is split across threads but stays scalar (no byte gather
// on x86).
// CHECK-LABEL: func.func @table
// CHECK: scf.forall (%{{.*}}) = (0) to (16384) step (256)
// CHECK: linalg.generic
// CHECK: tensor.extract
// CHECK-NOT: vector.gather
func.func @table(%x: tensor<4x4096xi8>) -> tensor<4x4096xi8> {
  %t = arith.constant dense<[-128, -91, -54, -17, 20, 57, 94, -125, -88, -51, -14, 23, 60, 97, -122, -85, -48, -11, 26, 63, 100, -119, -82, -45, -8, 29, 66, 103, -116, -79, -42, -5, 32, 69, 106, -113, -76, -39, -2, 35, 72, 109, -110, -73, -36, 1, 38, 75, 112, -107, -70, -33, 4, 41, 78, 115, -104, -67, -30, 7, 44, 81, 118, -101, -64, -27, 10, 47, 84, 121, -98, -61, -24, 13, 50, 87, 124, -95, -58, -21, 16, 53, 90, 127, -92, -55, -18, 19, 56, 93, -126, -89, -52, -15, 22, 59, 96, -123, -86, -49, -12, 25, 62, 99, -120, -83, -46, -9, 28, 65, 102, -117, -80, -43, -6, 31, 68, 105, -114, -77, -40, -3, 34, 71, 108, -111, -74, -37, 0, 37, 74, 111, -108, -71, -34, 3, 40, 77, 114, -105, -68, -31, 6, 43, 80, 117, -102, -65, -28, 9, 46, 83, 120, -99, -62, -25, 12, 49, 86, 123, -96, -59, -22, 15, 52, 89, 126, -93, -56, -19, 18, 55, 92, -127, -90, -53, -16, 21, 58, 95, -124, -87, -50, -13, 24, 61, 98, -121, -84, -47, -10, 27, 64, 101, -118, -81, -44, -7, 30, 67, 104, -115, -78, -41, -4, 33, 70, 107, -112, -75, -38, -1, 36, 73, 110, -109, -72, -35, 2, 39, 76, 113, -106, -69, -32, 5, 42, 79, 116, -103, -66, -29, 8, 45, 82, 119, -100, -63, -26, 11, 48, 85, 122, -97, -60, -23, 14, 51, 88, 125, -94, -57, -20, 17, 54, 91]> : tensor<256xi8>
  %e = tensor.empty() : tensor<4x4096xi8>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x4096xi8>) outs(%e : tensor<4x4096xi8>) {
  ^bb0(%in: i8, %o: i8):
    %i = arith.extui %in : i8 to i32
    %j = arith.index_cast %i : i32 to index
    %v = tensor.extract %t[%j] : tensor<256xi8>
    linalg.yield %v : i8
  } -> tensor<4x4096xi8>
  return %r : tensor<4x4096xi8>
}

// -----

// A concatenation's input written into its slice is not collapsed (that
// would copy the strided slice); it is vectorized along its channels.
// CHECK-LABEL: func.func @into_slice
// CHECK-NOT: into tensor<128xf32>
// CHECK: vector.transfer_write %{{.*}} : vector<8xf32>, tensor<1x1x1x8xf32>
// CHECK-NOT: into tensor<128xf32>
// CHECK: return
func.func @into_slice(%x: tensor<1x4x4x8xf32>, %dest: tensor<1x4x4x16xf32>) -> tensor<1x4x4x16xf32> {
  %s = tensor.extract_slice %dest[0, 0, 0, 8] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x16xf32> to tensor<1x4x4x8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x4x4x8xf32>) outs(%s : tensor<1x4x4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<1x4x4x8xf32>
  %i = tensor.insert_slice %r into %dest[0, 0, 0, 8] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x8xf32> into tensor<1x4x4x16xf32>
  return %i : tensor<1x4x4x16xf32>
}

// -----

// Left alone: dynamic shapes; a prime innermost size has no vector tile but
// 1 (the whole 1x7 is one vector).
// CHECK-LABEL: func.func @left_alone
// CHECK: linalg.generic {{.*}} ins(%arg0 : tensor<?x8xf32>)
// CHECK: vector.transfer_read %{{.*}} : tensor<7xf32>, vector<7xf32>
func.func @left_alone(%d: tensor<?x8xf32>, %p: tensor<1x7xf32>) -> (tensor<?x8xf32>, tensor<1x7xf32>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %d, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%n) : tensor<?x8xf32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%d : tensor<?x8xf32>) outs(%e : tensor<?x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %v = arith.negf %in : f32
    linalg.yield %v : f32
  } -> tensor<?x8xf32>
  %e2 = tensor.empty() : tensor<1x7xf32>
  %2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%p : tensor<1x7xf32>) outs(%e2 : tensor<1x7xf32>) {
  ^bb0(%in: f32, %o: f32):
    %v = arith.negf %in : f32
    linalg.yield %v : f32
  } -> tensor<1x7xf32>
  return %0, %2 : tensor<?x8xf32>, tensor<1x7xf32>
}

// -----

// A reduction over the innermost dimension (softmax's row max and sum, layer
// norm's mean): parallel chunks of rows (1536 rows of 128: one per chunk),
// each row read as one vector and reduced at once, reassociated (a tree of
// vector ops in LLVM, not one scalar add per element in order).
// CHECK-LABEL: func.func @row_sum
// CHECK: scf.forall (%[[R:.*]]) in (1536)
// CHECK: %[[ROW:.*]] = vector.transfer_read %{{.*}}[%[[R]], %c0], %{{.*}} {in_bounds = [true]} : tensor<1536x128xf32>, vector<128xf32>
// CHECK: vector.reduction <add>, %[[ROW]], %{{.*}} fastmath<reassoc> : vector<128xf32> into f32
// CHECK-NOT: linalg.generic
// SEQ-LABEL: func.func @row_sum
// SEQ-NOT: scf.forall
// SEQ: vector.reduction <add>
func.func @row_sum(%r: tensor<1536x128xf32>) -> tensor<1536xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1536xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1536xf32>) -> tensor<1536xf32>
  %1 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%r : tensor<1536x128xf32>) outs(%f : tensor<1536xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %v = arith.addf %in, %acc : f32
    linalg.yield %v : f32
  } -> tensor<1536xf32>
  return %1 : tensor<1536xf32>
}

// -----

// A row max over a small tensor (below min-parallel-elements): a loop over
// rows, one vector each; rows longer than 4096 stay scalar; an integer row
// sum (a pooling window) is a plain vector.reduction.
// CHECK-LABEL: func.func @row_max
// CHECK-NOT: scf.forall
// CHECK: vector.reduction <maximumf>, %{{.*}}, %{{.*}} fastmath<reassoc> : vector<8xf32> into f32
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK-SAME: tensor<2x5000xf32>
// CHECK: vector.reduction <add>, %{{.*}}, %{{.*}} : vector<64xi32> into i32
func.func @row_max(%r: tensor<4x8xf32>, %long: tensor<2x5000xf32>, %window: tensor<3x64xi32>) -> (tensor<4xf32>, tensor<2xf32>, tensor<3xi32>) {
  %z = arith.constant 0xFF800000 : f32
  %e = tensor.empty() : tensor<4xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %1 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%r : tensor<4x8xf32>) outs(%f : tensor<4xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %v = arith.maximumf %in, %acc : f32
    linalg.yield %v : f32
  } -> tensor<4xf32>
  %e2 = tensor.empty() : tensor<2xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<2xf32>) -> tensor<2xf32>
  %2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%long : tensor<2x5000xf32>) outs(%f2 : tensor<2xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %v = arith.maximumf %in, %acc : f32
    linalg.yield %v : f32
  } -> tensor<2xf32>
  %zi = arith.constant 0 : i32
  %e3 = tensor.empty() : tensor<3xi32>
  %f3 = linalg.fill ins(%zi : i32) outs(%e3 : tensor<3xi32>) -> tensor<3xi32>
  %3 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%window : tensor<3x64xi32>) outs(%f3 : tensor<3xi32>) {
  ^bb0(%in: i32, %acc: i32):
    %v = arith.addi %in, %acc : i32
    linalg.yield %v : i32
  } -> tensor<3xi32>
  return %1, %2, %3 : tensor<4xf32>, tensor<2xf32>, tensor<3xi32>
}

// -----

// A concatenation input not computed in place (a kernel's result, here an
// argument) is copied by a generated loop: one vector per pixel row of its
// channels, split across threads; a memref.copy of the strided slice would
// be an element-by-element loop.
// CHECK-LABEL: func.func @copy_into_slice
// CHECK: %[[S:.*]] = tensor.extract_slice %arg1[0, 0, 0, 16] [2, 32, 32, 16] [1, 1, 1, 1]
// CHECK: scf.forall (%[[N:.*]], %[[H:.*]]) in (2, 32) shared_outs(%{{.*}} = %[[S]])
// CHECK: scf.for %[[W:.*]] = %c0 to %c32
// CHECK: %[[V:.*]] = vector.transfer_read %arg0[%[[N]], %[[H]], %[[W]], %c0]{{.*}} : tensor<2x32x32x16xi8>, vector<16xi8>
// CHECK: vector.transfer_write %[[V]]
// CHECK: tensor.insert_slice %{{.*}} into %arg1[0, 0, 0, 16] [2, 32, 32, 16] [1, 1, 1, 1]
func.func @copy_into_slice(%x: tensor<2x32x32x16xi8>, %dest: tensor<2x32x32x48xi8>) -> tensor<2x32x32x48xi8> {
  %i = tensor.insert_slice %x into %dest[0, 0, 0, 16] [2, 32, 32, 16] [1, 1, 1, 1] : tensor<2x32x32x16xi8> into tensor<2x32x32x48xi8>
  return %i : tensor<2x32x32x48xi8>
}

// -----

// A dense block's input, written in place into the first concatenation, is
// also inserted into a later one: that later read takes the slice of the
// finished first concatenation, so bufferization keeps the in-place write
// and needs no strided memref.copy back.
// CHECK-LABEL: func.func @shared_block_input
// CHECK: %[[FIRST:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 0, 8] [1, 4, 4, 8]
// CHECK: vector.transfer_read %[[FIRST]][%c0, %{{.*}}, %{{.*}}, %c0]{{.*}} : tensor<1x4x4x16xf32>, vector<8xf32>
// CHECK: return
// BUF-LABEL: func.func @shared_block_input
// BUF-NOT: memref.copy
// BUF: return
func.func @shared_block_input(%x: tensor<1x4x4x8xf32>, %k: tensor<1x4x4x8xf32>) -> (tensor<1x4x4x16xf32>, tensor<1x4x4x24xf32>) {
  %d1 = tensor.empty() : tensor<1x4x4x16xf32>
  %s = tensor.extract_slice %d1[0, 0, 0, 0] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x16xf32> to tensor<1x4x4x8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x4x4x8xf32>) outs(%s : tensor<1x4x4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<1x4x4x8xf32>
  %i0 = tensor.insert_slice %r into %d1[0, 0, 0, 0] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x8xf32> into tensor<1x4x4x16xf32>
  %i1 = tensor.insert_slice %k into %i0[0, 0, 0, 8] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x8xf32> into tensor<1x4x4x16xf32>
  %d2 = tensor.empty() : tensor<1x4x4x24xf32>
  %j0 = tensor.insert_slice %r into %d2[0, 0, 0, 0] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x8xf32> into tensor<1x4x4x24xf32>
  return %i1, %j0 : tensor<1x4x4x16xf32>, tensor<1x4x4x24xf32>
}

// -----

// A bool operand keeps the op scalar: LLVM packs a vector of i1 into bits
// but stores an array of i1 one per byte (a vector read of a mask would
// take the wrong elements).
#id2 = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @bool_select
// CHECK-NOT: vector.transfer_read
// CHECK: linalg.generic
// SEQ-LABEL: func.func @bool_select
// SEQ-NOT: vector.transfer_read
func.func @bool_select(%m: tensor<64x64xi1>, %x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x64xf32>
  %r = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%m, %x : tensor<64x64xi1>, tensor<64x64xf32>) outs(%e : tensor<64x64xf32>) {
  ^bb0(%b: i1, %v: f32, %o: f32):
    %s = arith.select %b, %zero, %v : f32
    linalg.yield %s : f32
  } -> tensor<64x64xf32>
  return %r : tensor<64x64xf32>
}

// -----

// Attention's head split: a transpose (a named op) of a q/k/v slice of the
// fused projection, seen through its expand_shape into heads. It becomes
// vector loops over the head dimension (contiguous on both sides) and is
// not collapsed: merging the batch and head dimensions of the strided
// slice would copy it.
// CHECK-LABEL: func.func @head_split
// CHECK-NOT: linalg.transpose
// CHECK-NOT: tensor.collapse_shape
// CHECK: vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %c0], %{{.*}} {in_bounds = [true]} : tensor<16x2x4x16xf32>, vector<16xf32>
// CHECK-NOT: linalg.transpose
// SEQ-LABEL: func.func @head_split
// SEQ: vector<16xf32>
// BUF-LABEL: func.func @head_split
// BUF-NOT: memref.copy
// BUF: memref.expand_shape %{{.*}} {{\[}}[0], [1], [2, 3]] output_shape [16, 2, 4, 16] : memref<16x2x64xf32, strided<[?, ?, ?], offset: ?>>
// BUF-NOT: memref.copy
// BUF: return
func.func @head_split(%qkv: tensor<16x2x192xf32>) -> tensor<2x4x16x16xf32> {
  %s = tensor.extract_slice %qkv[0, 0, 64] [16, 2, 64] [1, 1, 1] : tensor<16x2x192xf32> to tensor<16x2x64xf32>
  %x = tensor.expand_shape %s [[0], [1], [2, 3]] output_shape [16, 2, 4, 16] : tensor<16x2x64xf32> into tensor<16x2x4x16xf32>
  %e = tensor.empty() : tensor<2x4x16x16xf32>
  %t = linalg.transpose ins(%x : tensor<16x2x4x16xf32>) outs(%e : tensor<2x4x16x16xf32>) permutation = [1, 2, 0, 3]
  return %t : tensor<2x4x16x16xf32>
}
