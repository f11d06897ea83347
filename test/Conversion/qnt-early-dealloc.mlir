// RUN: quant-opt %s --qnt-early-dealloc --split-input-file | FileCheck %s
// Each dealloc moves to just after the last use of its buffer (views,
// pointers, uses inside regions included).

// CHECK-LABEL: func.func @after_last_use
// CHECK: %[[A:.*]] = memref.alloc() : memref<64xf32>
// CHECK: %[[B:.*]] = memref.alloc() : memref<64xf32>
// CHECK-NEXT: memref.copy %[[A]], %[[B]]
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK-NEXT: %[[C:.*]] = memref.alloc() : memref<64xf32>
// CHECK-NEXT: memref.copy %[[B]], %[[C]]
// CHECK-NEXT: memref.dealloc %[[B]]
// CHECK-NEXT: return %[[C]]
func.func @after_last_use(%x: f32) -> memref<64xf32> {
  %a = memref.alloc() : memref<64xf32>
  linalg.fill ins(%x : f32) outs(%a : memref<64xf32>)
  %b = memref.alloc() : memref<64xf32>
  memref.copy %a, %b : memref<64xf32> to memref<64xf32>
  %c = memref.alloc() : memref<64xf32>
  memref.copy %b, %c : memref<64xf32> to memref<64xf32>
  memref.dealloc %a : memref<64xf32>
  memref.dealloc %b : memref<64xf32>
  return %c : memref<64xf32>
}

// -----

// A kernel reads the buffer through a view and a pointer (the form
// qnt-lower-to-runtime gives its calls): the dealloc follows the call.
func.func private @kernel(!llvm.ptr)
// CHECK-LABEL: func.func @through_pointer
// CHECK: call @kernel
// CHECK-NEXT: memref.dealloc %{{.*}} : memref<8x8xf32>
// CHECK-NEXT: %[[D:.*]] = memref.alloc() : memref<64xf32>
func.func @through_pointer(%x: f32) -> memref<64xf32> {
  %a = memref.alloc() : memref<8x8xf32>
  linalg.fill ins(%x : f32) outs(%a : memref<8x8xf32>)
  %flat = memref.collapse_shape %a [[0, 1]] : memref<8x8xf32> into memref<64xf32>
  %i = memref.extract_aligned_pointer_as_index %flat : memref<64xf32> -> index
  %n = arith.index_cast %i : index to i64
  %p = llvm.inttoptr %n : i64 to !llvm.ptr
  call @kernel(%p) : (!llvm.ptr) -> ()
  %d = memref.alloc() : memref<64xf32>
  linalg.fill ins(%x : f32) outs(%d : memref<64xf32>)
  memref.dealloc %a : memref<8x8xf32>
  return %d : memref<64xf32>
}

// -----

// A use inside a loop counts at the loop.
// CHECK-LABEL: func.func @inside_region
// CHECK: scf.for
// CHECK: memref.load %[[A:.*]][
// CHECK: }
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK-NEXT: %[[D:.*]] = memref.alloc()
func.func @inside_region(%x: f32, %out: memref<8xf32>) -> memref<8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %a = memref.alloc() : memref<8xf32>
  linalg.fill ins(%x : f32) outs(%a : memref<8xf32>)
  scf.for %i = %c0 to %c8 step %c1 {
    %v = memref.load %a[%i] : memref<8xf32>
    memref.store %v, %out[%i] : memref<8xf32>
  }
  %d = memref.alloc() : memref<8xf32>
  linalg.fill ins(%x : f32) outs(%d : memref<8xf32>)
  memref.dealloc %a : memref<8xf32>
  return %d : memref<8xf32>
}

// -----

// Negative: a pointer to the buffer is stored to memory, where its later
// readers are not uses; the dealloc stays where it is.
func.func private @reads_slot(!llvm.ptr)
// CHECK-LABEL: func.func @escapes
// CHECK: call @reads_slot
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: return
func.func @escapes(%x: f32, %out: memref<4xf32>) {
  %one = arith.constant 1 : i64
  %slot = llvm.alloca %one x !llvm.ptr : (i64) -> !llvm.ptr
  %a = memref.alloc() : memref<4xf32>
  %i = memref.extract_aligned_pointer_as_index %a : memref<4xf32> -> index
  %n = arith.index_cast %i : index to i64
  %p = llvm.inttoptr %n : i64 to !llvm.ptr
  llvm.store %p, %slot : !llvm.ptr, !llvm.ptr
  call @reads_slot(%slot) : (!llvm.ptr) -> ()
  linalg.fill ins(%x : f32) outs(%out : memref<4xf32>)
  memref.dealloc %a : memref<4xf32>
  return
}

// -----

// Negative: only allocations of the same block move; a buffer that comes
// from elsewhere keeps its dealloc.
// CHECK-LABEL: func.func @not_an_alloc
// CHECK: linalg.fill
// CHECK-NEXT: memref.dealloc %arg1
// CHECK-NEXT: return
func.func @not_an_alloc(%x: f32, %a: memref<4xf32>, %out: memref<4xf32>) {
  memref.copy %a, %out : memref<4xf32> to memref<4xf32>
  linalg.fill ins(%x : f32) outs(%out : memref<4xf32>)
  memref.dealloc %a : memref<4xf32>
  return
}

// -----

// Negative: the buffer's address stored as data by memref.store escapes as
// well.
// CHECK-LABEL: func.func @address_stored
// CHECK: linalg.fill
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: return
func.func @address_stored(%x: f32, %slots: memref<1xindex>, %out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %a = memref.alloc() : memref<4xf32>
  %i = memref.extract_aligned_pointer_as_index %a : memref<4xf32> -> index
  memref.store %i, %slots[%c0] : memref<1xindex>
  linalg.fill ins(%x : f32) outs(%out : memref<4xf32>)
  memref.dealloc %a : memref<4xf32>
  return
}

// -----

// A view yielded by an scf.if is an alias: its use after the if counts; a
// value loaded through the buffer is data and does not.
// CHECK-LABEL: func.func @yielded_view
// CHECK: %[[V:.*]] = scf.if
// CHECK: memref.copy %[[V]], %arg2
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[L:.*]], %arg0
func.func @yielded_view(%x: f32, %c: i1, %out: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %a = memref.alloc() : memref<8xf32>
  linalg.fill ins(%x : f32) outs(%a : memref<8xf32>)
  %l = memref.load %a[%c0] : memref<8xf32>
  %v = scf.if %c -> memref<4xf32, strided<[1], offset: ?>> {
    %lo = memref.subview %a[0] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1]>>
    %lc = memref.cast %lo : memref<4xf32, strided<[1]>> to memref<4xf32, strided<[1], offset: ?>>
    scf.yield %lc : memref<4xf32, strided<[1], offset: ?>>
  } else {
    %hi = memref.subview %a[4] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: 4>>
    %hc = memref.cast %hi : memref<4xf32, strided<[1], offset: 4>> to memref<4xf32, strided<[1], offset: ?>>
    scf.yield %hc : memref<4xf32, strided<[1], offset: ?>>
  }
  memref.copy %v, %out : memref<4xf32, strided<[1], offset: ?>> to memref<4xf32>
  %s = arith.addf %l, %x : f32
  memref.dealloc %a : memref<8xf32>
  return %s : f32
}
