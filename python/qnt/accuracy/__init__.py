"""Accuracy tools: what loses INT8 accuracy, and float-model transforms
that recover it, applied before `qnt.quantize_static` (docs/accuracy.md,
docs/analyze.md).

* `analyze`: per-layer diagnosis (SQNR, only-this / all-but-this layer
  metrics, saturation), causes of the worst layers and fixes checked by
  quantizing again (`python -m qnt analyze`, `CompiledModel.analyze`).
* `equalize`: cross-layer equalization (Nagel et al., ICCV 2019) of conv
  pairs, after `fold_batch_norms`: per-channel weight ranges evened out so
  that per-tensor INT8 weights lose less.
* `correct_biases`: empirical bias correction (Nagel et al.): the mean
  per-channel error of the INT8 layers, measured on calibration data,
  taken off the float biases.
* `smooth`: SmoothQuant (Xiao et al., ICML 2023): a LayerNorm's activation
  outliers migrated into the linear layers that read it.
"""

from .analyze import Analysis, AnalyzeError, analyze
from .bias_correction import correct_biases, format_report
from .equalize import RELU6_CHOICES, equalize, fold_batch_norms
from .smoothquant import find_smoothing_pairs, smooth

__all__ = ["Analysis", "AnalyzeError", "RELU6_CHOICES", "analyze", "correct_biases", "equalize",
           "find_smoothing_pairs", "fold_batch_norms", "format_report", "smooth"]
