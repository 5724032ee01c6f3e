"""pytest-benchmark setup: `pytest benchmarks/` (plain `pytest` collects only tests/).

Pins every thread pool to one thread BEFORE anything imports NumPy, torch,
onnxruntime or jax (the same settings as ``csoftmax._bench.pin_threads``, which
the ``python -m csoftmax bench`` command uses; torch.set_num_threads(1) and
onnxruntime's intra_op_num_threads=1 are set by the adapters themselves), and
records the CPU, its SIMD flags, csoftmax's isa_info() and the versions of
every peer in the benchmark JSON's machine_info (`--benchmark-json FILE`).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                               "=false intra_op_parallelism_threads=1").strip()

import numpy as np  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _bench  # noqa: E402


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cpu_model"] = _bench.cpu_model()
    machine_info["cpu_flags"] = _bench.cpu_flags()
    machine_info["csoftmax"] = csoftmax.__version__
    machine_info["csoftmax_isa"] = csoftmax.isa_info()
    machine_info["numpy"] = np.__version__
    machine_info["peers"] = {impl.name: impl.version() for impl in _bench.implementations()
                             if impl.kind == "peer"}
    machine_info["thread_env"] = {k: os.environ.get(k) for k in
                                  _bench.THREAD_ENV + ("XLA_FLAGS",)}
