"""Calibration memory does not grow with the data set.

* qnt.calibration.calibrate in chunks (quant-run --resume-stats) writes
  the statistics file one run over all samples writes, bit for bit, and
  the same INT8 model, for histogram and moving-average observers (whose
  state depends on the order of every call).
* quant-run --calibrate reads an uncompressed .npz one sample at a time:
  its peak RSS over 96 MiB of samples is that over 2 samples, within a
  margin far below the data's size.
"""

import json
import os
import subprocess

import pytest
from frontend_util import binary, np, qnt, run_tool, torch
from test_calibration_shards import SmallCnn

from qnt import calibration

SAMPLES = 23


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """{observer kind: prepared module}."""
    tmp = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    qnt.export(SmallCnn().eval(), (torch.randn(1, 3, 8, 8),), tmp / "fp32.mlir")
    modules = {}
    for observer in ("histogram", "moving_average_minmax", "entropy"):
        modules[observer] = tmp / f"prepared_{observer}.mlir"
        run_tool("quant-opt", tmp / "fp32.mlir", "--qnt-ptq-pipeline=qconfig=x86 "
                 f"activation-observer={observer}", "-o", modules[observer])
    return modules


def items():
    """Items of 1 to 3 samples whose range grows (histograms combine), so
    that items straddle chunk boundaries."""
    g = torch.Generator().manual_seed(1)
    count = 0
    while count < SAMPLES:
        n = min(1 + count % 3, SAMPLES - count)
        yield torch.randn(n, 3, 8, 8, generator=g) * (1 + count / 4)
        count += n


@pytest.mark.parametrize("observer", ["histogram", "moving_average_minmax", "entropy"])
def test_chunks_equal_one_run(prepared, observer, tmp_path):
    one = calibration.calibrate(prepared[observer], items(), tmp_path / "one.json",
                                names=["x"], batch=1, chunk_bytes=None)
    assert (one["samples"], one["chunks"]) == (SAMPLES, 1)
    calls = []
    chunked = calibration.calibrate(prepared[observer], items(), tmp_path / "chunked.json",
                                    names=["x"], batch=1, chunk_samples=5,
                                    progress=lambda done, total: calls.append((done, total)))
    assert (chunked["samples"], chunked["chunks"]) == (SAMPLES, 5)
    assert calls[-1] == (SAMPLES, SAMPLES)
    assert all(total in (None, SAMPLES) for _, total in calls)
    # A byte bound: 3 samples of 768 bytes per chunk.
    by_bytes = calibration.calibrate(prepared[observer], items(), tmp_path / "bytes.json",
                                     names=["x"], batch=1, chunk_bytes=3 * 768 + 100)
    assert by_bytes["chunks"] == 8
    text = (tmp_path / "one.json").read_bytes()
    assert (tmp_path / "chunked.json").read_bytes() == text
    assert (tmp_path / "bytes.json").read_bytes() == text
    stats = json.loads(text)
    assert stats["num_samples"] == SAMPLES
    assert all(o["calls"] == SAMPLES for o in stats["observers"].values())
    # The same statistics fold into the same INT8 model.
    models = []
    for name in ("one", "chunked"):
        run_tool("quant-opt", prepared[observer],
                 f"--qnt-fold-calibration=stats={tmp_path / (name + '.json')}",
                 "--qnt-convert", "-o", tmp_path / f"{name}.int8.mlir")
        models.append((tmp_path / f"{name}.int8.mlir").read_text())
    assert models[0] == models[1]
    # Only the statistics file is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_chunk_errors(prepared, tmp_path):
    with pytest.raises(ValueError, match="positive"):
        calibration.calibrate(prepared["histogram"], items(), tmp_path / "s.json",
                              names=["x"], batch=1, chunk_samples=0)
    bad = [torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    bad[1][2, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="sample 6 has NaN"):
        calibration.calibrate(prepared["histogram"], bad, tmp_path / "s.json",
                              names=["x"], batch=1, chunk_samples=3)
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(ValueError, match="no calibration samples"):
        calibration.calibrate(prepared["histogram"], [], tmp_path / "s.json",
                              names=["x"], batch=1)


OBSERVED = """
func.func @main(%x: tensor<256x1024xf32> {qnt.name = "x"}) -> tensor<256x1024xf32> {
  %0 = qnt.observe %x {id = "h", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<256x1024xf32>
  return %0 : tensor<256x1024xf32>
}
"""


def peak_rss_mib(command):
    """The peak RSS of one run of ``command`` (its own rusage, from wait4)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, stderr
    return usage.ru_maxrss / 1024


def write_samples(path, count):
    """An .npz of ``count`` 1 MiB samples, written without holding them."""
    import zipfile
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf, \
            zf.open("x.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(
            member, {"descr": "<f4", "fortran_order": False, "shape": (count, 256, 1024)})
        rng = np.random.default_rng(0)
        for s in range(count):
            member.write((rng.standard_normal((256, 1024), np.float32) * (1 + s)).tobytes())


def test_quant_run_memory_is_one_sample(tmp_path):
    module = tmp_path / "observed.mlir"
    module.write_text(OBSERVED)
    small, large = tmp_path / "small.npz", tmp_path / "large.npz"
    write_samples(small, 2)
    write_samples(large, 96)  # 96 MiB
    quant_run = binary("quant-run")
    base = peak_rss_mib([quant_run, module, "--calibrate", small, "--stats-file",
                         tmp_path / "small.json", "--quiet"])
    peak = peak_rss_mib([quant_run, module, "--calibrate", large, "--stats-file",
                         tmp_path / "large.json", "--quiet"])
    # Reading the whole file would add >= 96 MiB; one sample is 1 MiB.
    assert peak - base < 24, (base, peak)
    stats = json.loads((tmp_path / "large.json").read_text())
    assert stats["num_samples"] == 96 and stats["observers"]["h"]["calls"] == 96
    # The same data split in two and resumed: the same file.
    with np.load(large) as data:
        x = data["x"]
        np.savez(tmp_path / "a.npz", x=x[:40])
        np.savez(tmp_path / "b.npz", x=x[40:])
        del x
    run_tool("quant-run", module, "--calibrate", tmp_path / "a.npz", "--stats-file",
             tmp_path / "a.json", "--quiet")
    run_tool("quant-run", module, "--calibrate", tmp_path / "b.npz", "--resume-stats",
             tmp_path / "a.json", "--stats-file", tmp_path / "ab.json", "--quiet")
    assert (tmp_path / "ab.json").read_bytes() == (tmp_path / "large.json").read_bytes()
