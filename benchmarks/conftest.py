"""pytest-benchmark setup: `pytest benchmarks/` (plain `pytest` collects only tests/).

Records the CPU, the active instruction set and library versions in the
benchmark JSON (`--benchmark-json FILE`), and pins BLAS/OpenMP pools to one
thread so that every implementation runs single-threaded.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import csoftmax  # noqa: E402


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cpu_model"] = _cpu_model()
    machine_info["csoftmax"] = csoftmax.__version__
    machine_info["csoftmax_isa"] = csoftmax.isa_info()
    machine_info["numpy"] = np.__version__


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(20261123)
