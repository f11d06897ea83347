"""The exporter's op handlers, one module per op family, and the op table
they make up: ``MODULES`` (by module type), ``FUNCTIONS`` (by function) and
``METHODS`` (by tensor method name).

A handler takes the emitter (``ctx``, `qnt.export._Emitter`), then for a
module the module, then the call's arguments as PyTorch passes them, and
returns the result `qnt.ir.Value` (or a tuple of them). A new family is a
module here with its handlers and its three tables, added to ``FAMILIES``.
"""

from . import (attention, conv_pool, elementwise, embedding, normalization, quantization,
               recurrent, shape)

FAMILIES = (attention, conv_pool, elementwise, embedding, normalization, quantization,
            recurrent, shape)


def _merge(table):
    merged = {}
    for family in FAMILIES:
        for key, handler in getattr(family, table).items():
            if key in merged:
                raise AssertionError(f"{key!r} has handlers in two op families")
            merged[key] = handler
    return merged


MODULES = _merge("MODULES")
FUNCTIONS = _merge("FUNCTIONS")
METHODS = _merge("METHODS")
