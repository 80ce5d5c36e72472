"""One torch thread for a stretch of a test, and the caller's count back afterwards.

The tiny models' matrices are too small to gain from a second thread, a loaded machine makes two
contend, and runs compared bit for bit (golden runs, resumed runs, a grid's workers) must compute
with the same count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
