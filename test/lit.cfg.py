# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "QNT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.qnt_obj_root, "test")

config.environment["FILECHECK_OPTS"] = (
    "-enable-var-scope --allow-unused-prefixes=false")
# Keep kernel timings and thread pools predictable in tests.
config.environment["OMP_NUM_THREADS"] = "2"

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%qnt_src_root", config.qnt_src_root))
config.substitutions.append(("%qnt_obj_root", config.qnt_obj_root))

llvm_config.with_system_environment(["HOME", "TMPDIR", "TMP", "TEMP"])
# FileCheck, not, count come from the LLVM 22 tools directory.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.qnt_tools_dir, append_path=True)
llvm_config.use_default_substitutions()

tool_dirs = [config.qnt_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["quant-opt", "quant-run", "quant-compile"], tool_dirs)

# The AArch64 runtime that scripts/test.sh cross-builds (quant-compile
# --target aarch64 tests link against it and run under qemu-aarch64).
config.environment["QNT_AARCH64_RUNTIME_DIR"] = os.path.join(
    config.qnt_obj_root, "aarch64", "runtime", "lib")
config.environment["QNT_AARCH64_SYSROOT"] = os.path.join(
    config.qnt_obj_root, "aarch64", "sysroot")
