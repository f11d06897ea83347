//===- QntBase.td - qnt dialect definition -----------------*- tablegen -*-===//

#ifndef QNT_DIALECT_QNT_QNTBASE_TD
#define QNT_DIALECT_QNT_QNTBASE_TD

include "mlir/IR/OpBase.td"

def Qnt_Dialect : Dialect {
  let name = "qnt";
  let cppNamespace = "::qnt";
  let summary = "Quantization stubs, observers and type-polymorphic compute ops";
  let description = [{
    The `qnt` dialect adds what upstream `quant` lacks to model PyTorch-style
    quantization: quantized-region markers (`qnt.quant_stub`,
    `qnt.dequant_stub`), calibration observers (`qnt.observe`), fake
    quantization (`qnt.fake_quant`) and compute ops (`qnt.conv2d`,
    `qnt.linear`, `qnt.add`) that work on float tensors or on tensors of
    upstream `!quant.uniform` types.
  }];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
  let useDefaultAttributePrinterParser = 1;
}

class Qnt_Op<string mnemonic, list<Trait> traits = []>
    : Op<Qnt_Dialect, mnemonic, traits>;

#endif // QNT_DIALECT_QNT_QNTBASE_TD
