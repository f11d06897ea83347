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
* `adaround`: AdaRound (Nagel et al., ICML 2020): each conv / linear
  weight rounded up or down as learned on calibration data, the weights
  left on the INT8 grid qnt computes (`weight_scale`, `weight_integers`).
* `search`: the fastest quantize_static configuration (per layer INT8 or
  float, per-tensor or per-channel, the observer) within a top-1 or SQNR
  budget, ranked by measured latency (`--accuracy-budget`).
"""

from .adaround import adaround, format_adaround_report, weight_integers, weight_scale
from .analyze import Analysis, AnalyzeError, analyze
from .bias_correction import correct_biases, format_report
from .equalize import RELU6_CHOICES, equalize, fold_batch_norms
from .search import Budget, SearchResult, search
from .smoothquant import find_smoothing_pairs, smooth

__all__ = ["Analysis", "AnalyzeError", "Budget", "RELU6_CHOICES", "SearchResult", "adaround",
           "analyze", "correct_biases", "equalize", "find_smoothing_pairs", "fold_batch_norms",
           "format_adaround_report", "format_report", "search", "smooth", "weight_integers",
           "weight_scale"]
