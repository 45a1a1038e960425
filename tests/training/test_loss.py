"""The NT-Xent loss against a direct computation, on the CPU and on a GPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xwvnet.training import nt_xent

torch.set_num_threads(1)


def _direct_nt_xent(z1: np.ndarray, z2: np.ndarray, t: float) -> float:
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [z[i] @ z[k] / t for k in range(2 * n) if k != i]
        total += -z[i] @ z[j] / t + math.log(sum(math.exp(s) for s in sims))
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_equals_a_direct_computation(t):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    got = nt_xent(torch.tensor(z1), torch.tensor(z2), temperature=t)
    assert float(got) == pytest.approx(_direct_nt_xent(z1, z2, t), rel=1e-9)


def test_nt_xent_is_low_for_matching_pairs_and_high_for_swapped_ones():
    z = torch.eye(8)
    assert float(nt_xent(z, z, 0.1)) < 0.01
    assert float(nt_xent(z, z.roll(1, 0), 0.1)) > 5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nt_xent_on_cuda_equals_the_cpu():
    """The loss and its gradients on the GPU equal the CPU's (float64: no reduced-precision path can hide there)."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    results = []
    for device in ("cpu", "cuda"):
        z1 = torch.tensor(a, device=device, requires_grad=True)
        z2 = torch.tensor(b, device=device, requires_grad=True)
        loss = nt_xent(z1, z2, temperature=0.1)
        loss.backward()
        assert loss.device.type == device and z1.grad.device.type == device
        results.append([t.detach().cpu() for t in (loss, z1.grad, z2.grad)])
    for on_cpu, on_gpu in zip(*results, strict=True):
        torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-9, atol=1e-12)
    assert float(results[1][0]) == pytest.approx(_direct_nt_xent(a, b, 0.1), rel=1e-9)
