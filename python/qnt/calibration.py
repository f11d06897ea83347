"""Calibration over sharded data, in this process or on a Dask cluster.

``write_shards`` streams calibration data into data-set files (`qnt.data`),
``calibrate`` runs ``quant-run --calibrate`` on each (one after the other,
or one per Dask worker) and merges the statistics with ``quant-run
--merge-stats``; in this process it runs chunks of bounded size instead,
each continuing the last one's statistics (``quant-run --resume-stats``),
which gives one run's file bit for bit:

    stats = calibrate("prepared.mlir", loader, "stats.json", names=["x"], batch=1,
                      client=dask.distributed.Client(cluster))

Min-max statistics merge exactly: any sharding gives the file one process
writes.  Histograms merge approximately (see `calibrate`).
"""

import contextlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import data as qdata
from ._files import atomic_output
from .tools import tool

# Samples read at once from an .npz (at least one).
_CHUNK_BYTES = 16 << 20
# calibrate's default bound of one chunk's samples, in bytes.
CALIBRATION_CHUNK_BYTES = 256 << 20


def _as_array(name, value):
    """A data-set array: `qnt.data`'s dtypes, other numbers as float32."""
    a = qdata._numpy(value)
    if a.dtype not in qdata._KEPT_DTYPES:
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"input '{name}' is not numeric ({a.dtype})")
        a = a.astype(np.float32)
    return a


def _item_values(item, names):
    """The inputs of one item of an iterable, in ``names`` order."""
    if isinstance(item, Mapping):
        missing = [n for n in names if n not in item]
        if missing:
            raise ValueError(f"a data item has no input {missing}")
        return [item[n] for n in names]
    values = list(item) if isinstance(item, (tuple, list)) else [item]
    if len(values) < len(names):
        raise ValueError(f"a data item has {len(values)} values for {len(names)} inputs")
    return values[:len(names)]


def _npy_header(f):
    """(shape, fortran order, dtype) of the .npy stream ``f``, read past its header."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _read_npz(path, names):
    """Chunks [s, ...] of the samples of a data set, read as a stream."""
    with zipfile.ZipFile(path) as zf, contextlib.ExitStack() as stack:
        streams, headers, counts = [], [], set()
        for name in names:
            try:
                f = stack.enter_context(zf.open(name + ".npy"))
            except KeyError:
                raise ValueError(f"{path}: no array '{name}'") from None
            shape, fortran, dtype = _npy_header(f)
            if fortran or dtype.hasobject or not shape:
                raise ValueError(f"{path}: '{name}' is not a C-order numeric array "
                                 "with a sample axis")
            streams.append(f)
            headers.append((shape[1:], dtype))
            counts.add(shape[0])
        if len(counts) != 1:
            raise ValueError(f"{path}: the inputs have different numbers of samples")
        sizes = [dtype.itemsize * math.prod(shape) for shape, dtype in headers]
        chunk = max(1, _CHUNK_BYTES // max(1, sum(sizes)))
        while True:
            parts = []
            for f, size, (shape, dtype) in zip(streams, sizes, headers):
                raw = f.read(chunk * size)
                n = len(raw) // size if size else 0
                parts.append(np.frombuffer(raw[:n * size], dtype).reshape(n, *shape))
            if not len(parts[0]):
                return
            yield parts


def _chunks(data, names, batch):
    """Lists of arrays [s, ...] of samples, one per input, from any `data`."""
    if isinstance(data, (str, os.PathLike)):
        for parts in _read_npz(data, names):
            yield [_as_array(n, p) for n, p in zip(names, parts)]
        return
    if hasattr(data, "shape"):  # one tensor or array of examples
        if len(names) != 1:
            raise ValueError(f"one array of examples for {len(names)} inputs")
        data = {names[0]: data}
    if isinstance(data, Mapping):
        yield [qdata.samples(_as_array(n, v), batch)
               for n, v in zip(names, _item_values(data, names))]
        return
    for item in data:
        yield [qdata.samples(_as_array(n, v), batch)
               for n, v in zip(names, _item_values(item, names))]


class _ShardWriter:
    """Appends samples round-robin to one raw file per shard and input."""

    def __init__(self, names, shards, directory):
        self.names, self.shards, self.directory = names, shards, directory
        self.files = [[open(directory / f".{s}.{i}.raw", "wb") for i in range(len(names))]
                      for s in range(shards)]
        self.layout = None  # (sample shape, dtype) per input
        self.count = 0
        self.base = 0  # samples before this writer's (for messages)

    def add(self, parts):
        layout = [(p.shape[1:], p.dtype) for p in parts]
        if self.layout is None:
            self.layout = layout
        for name, old, new in zip(self.names, self.layout, layout):
            if old != new:
                raise ValueError(f"input '{name}': samples of shape {new[0]} {new[1]} after "
                                 f"{old[0]} {old[1]}")
        counts = {len(p) for p in parts}
        if len(counts) != 1:
            raise ValueError(f"a data item has different numbers of samples per input: "
                             f"{dict(zip(self.names, (len(p) for p in parts)))}")
        for name, p in zip(self.names, parts):
            if np.issubdtype(p.dtype, np.floating):
                bad = ~np.isfinite(p.reshape(len(p), -1)).all(axis=1)
                if bad.any():
                    raise ValueError(f"input '{name}': sample "
                                     f"{self.base + self.count + int(bad.argmax())} "
                                     "has NaN or Inf values")
        for s in range(self.shards):
            first = (s - self.count) % self.shards
            for f, p in zip(self.files[s], parts):
                f.write(np.ascontiguousarray(p[first::self.shards]).tobytes())
        self.count += len(parts[0])

    def close(self):
        for files in self.files:
            for f in files:
                f.close()

    def finish(self, paths):
        """Writes shard s to paths[s] (the non-empty shards only)."""
        written = []
        for s, path in enumerate(paths):
            n = len(range(s, self.count, self.shards))
            if not n:
                break
            with atomic_output(path, "wb") as out, \
                    zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for i, (name, (shape, dtype)) in enumerate(zip(self.names, self.layout)):
                    header = {"descr": np.lib.format.dtype_to_descr(dtype),
                              "fortran_order": False, "shape": (n, *shape)}
                    raw_path = self.directory / f".{s}.{i}.raw"
                    if raw_path.stat().st_size != n * dtype.itemsize * math.prod(shape):
                        raise RuntimeError(f"shard {s}: '{name}' has the wrong size")
                    with zf.open(name + ".npy", "w", force_zip64=True) as member, \
                            open(raw_path, "rb") as raw:
                        np.lib.format.write_array_header_2_0(member, header)
                        shutil.copyfileobj(raw, member)
            written.append(Path(path))
        return written


def write_shards(data, names, batch, directory, *, shards=1, limit=None):
    """Writes calibration data as ``shards`` data sets ``directory/shard<i>.npz``.

    data: a DataLoader or any iterable of items, an item being a tensor or
        array, a tuple / list (the inputs in ``names`` order, then anything,
        e.g. labels, which is dropped) or a dict by name, each input stacked
        examples [n, ...] with n a multiple of ``batch``; a dict {name:
        examples [N, ...]} or one tensor / array (one input); or the path of
        an .npz data set (samples already: ``batch`` is not used).
    Sample i (one function call, ``batch`` examples) goes to shard
    i % shards (round robin), so that every shard spans the whole data.
    Memory: one item of the iterable (one chunk of the .npz); samples are
    appended to raw files at once and the .npz are assembled at the end, so
    the directory needs about twice the data's size meanwhile.
    limit: at most this many samples (the iterable is not read further).
    Returns the paths written, fewer than ``shards`` if there are fewer
    samples.  NaN / Inf in a float input, mismatched shapes and empty data
    are ValueErrors; no shard is written then."""
    names = list(names)
    if not names or shards < 1 or batch < 1 or (limit is not None and limit < 0):
        raise ValueError("write_shards needs input names, shards >= 1, batch >= 1 "
                         "and limit >= 0")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".shards.") as work:
        writer = _ShardWriter(names, shards, Path(work))
        try:
            for parts in _chunks(data, names, batch):
                if limit is not None:
                    parts = [p[:limit - writer.count] for p in parts]
                writer.add(parts)
                if limit is not None and writer.count >= limit:
                    break
        finally:
            writer.close()
        if not writer.count:
            raise ValueError("no calibration samples")
        return writer.finish([directory / f"shard{s}.npz" for s in range(shards)])


def _samples(path):
    """The number of samples of a shard, from its first array's header."""
    with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as f:
        return _npy_header(f)[0][0]


_PROGRESS = re.compile(r"calibrating: (\d+)/\d+ samples")


def _run_reporting(command, on_samples):
    """Runs quant-run --calibrate, calling on_samples(k) at each of its
    progress lines; a CompletedProcess with the other stderr lines."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    other = []
    for line in process.stderr:
        m = _PROGRESS.match(line)
        if m:
            on_samples(int(m.group(1)))
        else:
            other.append(line)
    process.wait()
    return subprocess.CompletedProcess(command, process.returncode, "", "".join(other))


def _sample_bytes(parts):
    return sum(p.dtype.itemsize * math.prod(p.shape[1:]) for p in parts)


def _calibrate_in_chunks(quant_run, prepared, data, names, batch, limit, work, chunk_samples,
                         chunk_bytes, progress):
    """Runs quant-run --calibrate on consecutive chunks of at most
    ``chunk_samples`` samples (and ``chunk_bytes`` bytes of them), each
    resuming the previous chunk's statistics; returns (statistics file,
    samples, chunks).  One chunk on disk and one item in memory at a time."""
    state = {"writer": None, "directory": None, "layout": None, "done": 0, "chunks": 0,
             "stats": None}
    per_chunk = None

    def drop_writer():
        state["writer"].close()
        state["directory"].cleanup()
        state.update(writer=None, directory=None)

    def run_chunk(final):
        writer = state["writer"]
        writer.close()
        n, done, index = writer.count, state["done"], state["chunks"]
        path = work / f"chunk{index}.npz"
        writer.finish([path])
        drop_writer()
        stats = work / f"stats{index % 2}.json"
        command = [quant_run, prepared, "--calibrate", str(path), "--stats-file", str(stats)]
        if state["stats"]:
            command += ["--resume-stats", str(state["stats"])]
        total = done + n if final else None
        result = _run_reporting(command, lambda k: progress and progress(done + k, total))
        path.unlink()
        if result.returncode:
            raise RuntimeError(f"calibration chunk {index} (samples {done}..{done + n - 1}): "
                               f"quant-run exited with {result.returncode}:\n"
                               f"{result.stderr.strip()}")
        state.update(done=done + n, chunks=index + 1, stats=stats)

    count = 0
    try:
        for parts in _chunks(data, names, batch):
            if limit is not None:
                parts = [p[:limit - count] for p in parts]
            if per_chunk is None and len(parts[0]):
                per_chunk = max(1, chunk_bytes // max(1, _sample_bytes(parts)))
                if chunk_samples:
                    per_chunk = min(per_chunk, chunk_samples)
            while len(parts[0]):
                if state["writer"] is None:
                    directory = tempfile.TemporaryDirectory(dir=work, prefix=".chunk.")
                    writer = _ShardWriter(names, 1, Path(directory.name))
                    writer.layout, writer.base = state["layout"], state["done"]
                    state.update(writer=writer, directory=directory)
                writer = state["writer"]
                take = per_chunk - writer.count
                writer.add([p[:take] for p in parts])
                state["layout"] = writer.layout
                count += len(parts[0][:take])
                parts = [p[take:] for p in parts]
                if writer.count >= per_chunk:
                    run_chunk(final=False)
            if limit is not None and count >= limit:
                break
        if state["writer"] is not None and state["writer"].count:
            run_chunk(final=True)
    finally:
        if state["writer"] is not None:
            drop_writer()
    if not state["done"]:
        raise ValueError("no calibration samples")
    if progress:
        progress(state["done"], state["done"])
    return state["stats"], state["done"], state["chunks"]


def calibrate(prepared_mlir, data, stats_out, *, names, batch, client=None, shards=None,
              limit=None, build_dir=None, progress=None, chunk_samples=None,
              chunk_bytes=CALIBRATION_CHUNK_BYTES):
    """Runs the observers of ``prepared_mlir`` (after --qnt-prepare) over
    ``data`` (anything `write_shards` takes) and writes the statistics file
    ``stats_out`` (atomically).

    Without ``client`` and ``shards`` (or shards=1) the data is calibrated
    in chunks of at most ``chunk_samples`` samples and ``chunk_bytes``
    bytes of samples (default 256 MiB; both None: one chunk), one after the
    other, each ``quant-run --calibrate chunk.npz --resume-stats
    previous.json``: the statistics equal one run over all samples in
    order, bit for bit, for every observer kind, and only one chunk is on
    disk (one item of the iterable in memory; quant-run reads one sample at
    a time), whatever the data's size.  progress(done, total) gets total
    None until the last chunk.

    Otherwise each shard runs ``quant-run --calibrate``: one after the other in this
    process without ``client`` (``shards`` of them), else on the
    workers of the dask.distributed ``client`` (one shard per worker unless
    ``shards``).  The shards and their statistics are files in a temporary
    directory beside ``stats_out``: workers must see that filesystem at the
    same path, and quant-run of the same build (``build_dir``,
    $QNT_BUILD_DIR or <repo>/build, resolved here) at the same path.  The
    statistics are merged here, in shard order, by ``quant-run --merge-stats``.

    Min-max kinds give the same file for any sharding, bit for bit.  Moving
    averages cannot be merged (quant-run refuses).  Histograms merge
    approximately (docs/calibration.md, "Merging statistics"; the next
    run's histogram is resampled onto the grown grid): count, calls and min
    are exact; the max, grown by HistogramObserver's _adjust_min_max,
    depends on the history, and so does the mass (torch.histc's
    integer-truncated range drops other values per call).  Measured on a
    small CNN, 24 samples, 2 and 3 shards vs one run
    (test/python/test_calibration_shards.py holds it to the bounds in
    brackets): max within 0.74% of the range [1%], mass within 1.01% [2%],
    the normalized CDFs within 5.3% [8%] (most where few values spread over
    many bins: 240 in 2048), the INT8 model's outputs within 2.03 output
    quantization steps [3].  No bin-for-bin equality: the grids differ.

    progress: called as progress(done_samples, total_samples) as quant-run
    reports (a tenth of a shard at a time here, a shard at a time on Dask).
    Returns {"samples", "shards", "chunks", "seconds", "stats"}.  A
    failing quant-run is a RuntimeError naming the shard (chunk) and quoting
    its stderr; ``stats_out`` is not written then."""
    if (chunk_samples is not None and chunk_samples < 1) or \
            (chunk_bytes is not None and chunk_bytes < 1):
        raise ValueError("chunk_samples and chunk_bytes must be positive (or None)")
    start = time.monotonic()
    quant_run = str(Path(tool("quant-run", build_dir)).resolve())
    prepared = str(Path(prepared_mlir).resolve())
    stats_out = Path(stats_out)
    chunked = client is None and shards in (None, 1)
    if shards is None:
        shards = max(1, len(client.scheduler_info()["workers"])) if client else 1
    with tempfile.TemporaryDirectory(dir=stats_out.resolve().parent,
                                     prefix=".calibrate.") as work:
        work = Path(work)
        if chunked:
            stats, total, chunks = _calibrate_in_chunks(
                quant_run, prepared, data, names, batch, limit, work, chunk_samples,
                chunk_bytes or (1 << 62), progress)
            os.replace(stats, stats_out)
            return {"samples": total, "shards": 1, "chunks": chunks,
                    "seconds": time.monotonic() - start, "stats": str(stats_out)}
        paths = write_shards(data, names, batch, work, shards=shards, limit=limit)
        sizes = [_samples(p) for p in paths]
        total = sum(sizes)
        commands = [[quant_run, prepared, "--calibrate", str(p), "--stats-file",
                     str(work / f"stats{s}.json")] for s, p in enumerate(paths)]
        results, done = [None] * len(paths), 0
        if client is None:
            for s, command in enumerate(commands):
                results[s] = _run_reporting(command, lambda k, d=done: progress and progress(
                    d + k, total))
                done += sizes[s]
        else:
            commands = [c + ["--quiet"] for c in commands]
            from dask.distributed import as_completed
            futures = [client.submit(subprocess.run, command, capture_output=True, text=True,
                                     pure=False) for command in commands]
            shard_of = {f.key: s for s, f in enumerate(futures)}
            try:
                for future in as_completed(futures):
                    s = shard_of[future.key]
                    try:
                        results[s] = future.result()
                    except Exception as e:
                        raise RuntimeError(f"calibration shard {s} ({paths[s].name}) "
                                           f"failed on its worker: {e!r}") from e
                    done += sizes[s]
                    if progress:
                        progress(done, total)
            finally:
                client.cancel(futures)
        for s, result in enumerate(results):
            if result.returncode:
                raise RuntimeError(f"calibration shard {s} ({paths[s].name}, {sizes[s]} "
                                   f"samples): quant-run exited with {result.returncode}:\n"
                                   f"{result.stderr.strip()}")
        if len(paths) == 1:
            os.replace(work / "stats0.json", stats_out)
        else:
            merge = [quant_run]
            for s in range(len(paths)):
                merge += ["--merge-stats", str(work / f"stats{s}.json")]
            result = subprocess.run(merge + ["--stats-file", str(stats_out)],
                                    capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"quant-run --merge-stats of {len(paths)} shards failed:\n"
                                   f"{result.stderr.strip()}")
    return {"samples": total, "shards": len(paths), "chunks": len(paths),
            "seconds": time.monotonic() - start, "stats": str(stats_out)}
