// RUN: quant-opt %s --qnt-outline-parallel-loops | FileCheck %s --enable-var-scope
// scf.forall -> qnt_rt_parallel_for(body, context, n) with the body outlined.

// The values used from above travel in a struct allocated at the entry:
// memrefs as descriptors, index values as i64, floats as they are;
// constants are cloned into the body. 8 x 4 iterations, linearized.
// CHECK-LABEL: func.func @scale(
// CHECK-SAME: %[[A:.*]]: memref<8x64xf32>, %[[B:.*]]: memref<8x64xf32>, %[[S:.*]]: f32, %[[OFF:.*]]: index)
// CHECK: %[[CTX:.*]] = llvm.alloca %{{.*}} x !llvm.struct<(i64, struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>, f32, struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>)>
// CHECK: %[[O:.*]] = arith.index_cast %[[OFF]] : index to i64
// CHECK: llvm.insertvalue %[[O]], %{{.*}}[0]
// CHECK: builtin.unrealized_conversion_cast %[[A]] : memref<8x64xf32> to !llvm.struct
// CHECK: llvm.insertvalue %[[S]], %{{.*}}[2]
// CHECK: llvm.store %{{.*}}, %[[CTX]]
// CHECK: %[[F:.*]] = constant @scale_parallel_0 : (!llvm.ptr, i64, i64) -> ()
// CHECK: %[[FP:.*]] = builtin.unrealized_conversion_cast %[[F]] : (!llvm.ptr, i64, i64) -> () to !llvm.ptr
// CHECK: %[[N:.*]] = arith.constant 32 : i64
// CHECK: call @qnt_rt_parallel_for(%[[FP]], %[[CTX]], %[[N]])
// CHECK-NOT: scf.forall
// CHECK: return

// CHECK-LABEL: func.func private @scale_parallel_0(
// CHECK-SAME: %[[P:.*]]: !llvm.ptr, %[[BEGIN:.*]]: i64, %[[END:.*]]: i64)
// CHECK: %[[L:.*]] = llvm.load %[[P]]
// CHECK: %[[M:.*]] = llvm.extractvalue %[[L]][1]
// CHECK: %[[AM:.*]] = builtin.unrealized_conversion_cast %[[M]] : !llvm.struct<{{.*}}> to memref<8x64xf32>
// CHECK: %[[LO:.*]] = arith.index_cast %[[BEGIN]] : i64 to index
// CHECK: %[[HI:.*]] = arith.index_cast %[[END]] : i64 to index
// CHECK: scf.for %[[I:.*]] = %[[LO]] to %[[HI]]
// CHECK: arith.remui %[[I]], %c4
// CHECK: arith.divui %[[I]], %c4
// CHECK: vector.transfer_read %[[AM]]
// CHECK: return
func.func @scale(%a: memref<8x64xf32>, %b: memref<8x64xf32>, %s: f32, %off: index) {
  %c0 = arith.constant 0 : index
  scf.forall (%i, %j) = (0, 0) to (8, 64) step (1, 16) {
    %k = arith.addi %j, %off : index
    %v = vector.transfer_read %a[%i, %k], %s {in_bounds = [true]} : memref<8x64xf32>, vector<16xf32>
    %w = vector.broadcast %s : f32 to vector<16xf32>
    %m = arith.mulf %v, %w : vector<16xf32>
    vector.transfer_write %m, %b[%i, %j] {in_bounds = [true]} : vector<16xf32>, memref<8x64xf32>
  }
  return
}

// Nothing captured: a null context. Dynamic bounds: left for
// scf-forall-to-for.
// CHECK-LABEL: func.func @fill_and_dynamic(
// CHECK: %[[Z:.*]] = llvm.mlir.zero : !llvm.ptr
// CHECK: call @qnt_rt_parallel_for(%{{.*}}, %[[Z]], %{{.*}})
// CHECK: scf.forall (%{{.*}}) in (%arg1)
// CHECK-LABEL: func.func private @fill_and_dynamic_parallel_1(
// CHECK: memref.get_global @table
// CHECK-LABEL: func.func private @qnt_rt_parallel_for(!llvm.ptr, !llvm.ptr, i64)
memref.global "private" @table : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
func.func @fill_and_dynamic(%a: memref<?xf32>, %n: index) {
  %one = arith.constant 1.0 : f32
  scf.forall (%i) in (4) {
    %t = memref.get_global @table : memref<4xf32>
    memref.store %one, %t[%i] : memref<4xf32>
  }
  scf.forall (%i) in (%n) {
    memref.store %one, %a[%i] : memref<?xf32>
  }
  return
}
