"""The fuzz suite runs torch on one thread: its tensors are small, and on a busy machine the
thread barriers of a two-thread pool cost more than the work (measured: 12 ms instead of 0.3 ms
for one ``exp`` of 10**5 floats under load)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
