"""Many short rows (length <= 16, at least 128 of them) are computed side by
side, one row per vector lane. The result must be bitwise the one each row
gets on its own (the row kernel), with special rows mixed in, strided, in
place, and for the leftover rows after the last full group."""

import numpy as np
import pytest

import csoftmax
from conftest import DTYPE_IDS, DTYPES, OPS, OP_IDS, assert_bitwise


def _one_by_one(op, x):
    rows = [op.fn(np.ascontiguousarray(r)) for r in x]
    return np.array(rows, dtype=x.dtype).reshape(x.shape[0], *np.shape(rows[0]))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 10, 15, 16, 17])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_batched_short_rows_equal_single_rows(op, dtype, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((300, n)) * 10).astype(dtype)
    # special rows inside the first group of 128 and in the leftover rows
    x[5, 0] = np.nan
    x[130, -1] = np.inf
    x[200, :] = -np.inf
    x[7, :] = 3.0                      # ties: exactly 1/n
    want = _one_by_one(op, x)
    assert_bitwise(op.fn(x), want)
    # strided rows and a strided row stride
    big = np.zeros((600, 2 * n), dtype)
    big[::2, ::2] = x
    assert_bitwise(op.fn(big[::2, ::2]), want)
    if op.name != "logsumexp":
        y = x.copy()
        op.fn(y, out=y)
        assert_bitwise(y, want)
