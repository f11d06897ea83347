"""Float-model transforms that make INT8 quantization more accurate, applied
before `qnt.quantize_static` (docs/accuracy.md).

* `equalize`: cross-layer equalization (Nagel et al., ICCV 2019) of conv
  pairs, after `fold_batch_norms`: per-channel weight ranges evened out so
  that per-tensor INT8 weights lose less.
* `correct_biases`: empirical bias correction (Nagel et al.): the mean
  per-channel error of the INT8 layers, measured on calibration data,
  taken off the float biases.
* `smooth`: SmoothQuant (Xiao et al., ICML 2023): a LayerNorm's activation
  outliers migrated into the linear layers that read it.
"""

from .bias_correction import correct_biases, format_report
from .equalize import RELU6_CHOICES, equalize, fold_batch_norms
from .smoothquant import find_smoothing_pairs, smooth

__all__ = ["RELU6_CHOICES", "correct_biases", "equalize", "find_smoothing_pairs",
           "fold_batch_norms", "format_report", "smooth"]
