"""The denoiser contract: EDM preconditioning by its properties, an oracle network, and the precision choice."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import pytest
import torch
from torch import nn

from recon.models import EDMDenoiser, GaussianDenoiser, UNet, precision
from recon.models import denoiser as denoiser_module

SD = 0.5  # sigma_data in the [-1, 1] space


def test_preconditioning_gives_unit_variance_network_inputs_and_targets():
    """Karras et al.'s design goal (App. B.6): for data of standard deviation sigma_data, the network's input
    c_in (y + n) and its effective target (y - c_skip (y + n)) / c_out have unit variance at every noise level."""
    g = torch.Generator().manual_seed(0)
    d = EDMDenoiser(UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16), image_size=8)
    y = SD * torch.randn(200_000, generator=g, dtype=torch.float64)  # clean data in the [-1, 1] space
    for sigma in (0.005, 0.05, 0.25, 1.0, 10.0):  # image units
        c_skip, c_out, c_in, _ = d.precondition(torch.tensor([sigma], dtype=torch.float64))
        noisy = y + 2 * sigma * torch.randn(y.shape, generator=g, dtype=torch.float64)
        assert abs(float((c_in * noisy).var()) - 1) < 0.02
        assert abs(float(((y - c_skip * noisy) / c_out).var()) - 1) < 0.02


class OracleNetwork(nn.Module):
    """The network an EDM denoiser would need to reproduce a Gaussian prior's exact denoiser, written from Table 1 of
    Karras et al. (2022) independently of ``EDMDenoiser``."""

    def __init__(self, gaussian: GaussianDenoiser):
        super().__init__()
        self.gaussian = gaussian
        self.dtype_marker = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, net_input, c_noise):
        s = torch.exp(4 * c_noise).reshape(-1, 1, 1, 1)  # c_noise = ln(s) / 4
        xs = net_input * (s**2 + SD**2).sqrt()  # c_in = 1 / sqrt(s^2 + sd^2)
        denoised = 2 * self.gaussian((xs + 1) / 2, s.reshape(-1) / 2) - 1
        c_skip, c_out = SD**2 / (s**2 + SD**2), s * SD / (s**2 + SD**2).sqrt()
        return (denoised - c_skip * xs) / c_out


def test_edm_denoiser_with_an_oracle_network_is_the_exact_denoiser():
    g = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))[0]
    cov = basis @ torch.diag(torch.linspace(0.001, 0.05, 16, dtype=torch.float64)) @ basis.T
    gaussian = GaussianDenoiser(0.4 + 0.1 * torch.rand(1, 4, 4, generator=g, dtype=torch.float64), cov)
    edm = EDMDenoiser(OracleNetwork(gaussian), image_size=4, precision="fp32")
    x = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    for sigma in (0.003, 0.1, 2.0, 30.0):
        noisy = x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)
        assert torch.allclose(edm(noisy, sigma), gaussian(noisy, sigma), atol=1e-9)


def test_precision_is_explicit_else_the_environment_else_the_machine(monkeypatch):
    monkeypatch.delenv(precision.ENVIRONMENT_VARIABLE, raising=False)
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
    assert precision.resolve("auto") == ("bf16" if precision.cpu_has_native_bf16() else "fp32")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)  # an AVX2-only CPU
    assert precision.resolve("auto") == "fp32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # AVX512_BF16 or AMX
    assert precision.resolve("auto") == "bf16"
    monkeypatch.setenv(precision.ENVIRONMENT_VARIABLE, "fp32")
    assert precision.resolve("auto") == "fp32" and precision.resolve("bf16") == "bf16"
    monkeypatch.setenv(precision.ENVIRONMENT_VARIABLE, "half")
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("auto")
    with pytest.raises(ValueError, match="precision must be one of"):
        EDMDenoiser(UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16), image_size=8, precision="fp16")


def test_native_bf16_needs_the_cpu_flag_and_avx512_kernels(monkeypatch):
    """An AVX2-only CPU, or AVX-512 kernels capped at AVX2 (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA), emulates
    bf16: auto must choose fp32 there."""
    monkeypatch.delenv(precision.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    for capability, onednn, native in (("AVX512", None, True), ("AVX2", None, False), ("AVX512", "AVX2", False),
                                       ("AVX512", "AVX512_CORE_BF16", True)):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        if onednn:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn)
        else:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        precision.cpu_has_native_bf16.cache_clear()
        assert precision.cpu_has_native_bf16() is native, (capability, onednn)
        assert precision.resolve("auto", "cpu") == ("bf16" if native else "fp32")
    precision.cpu_has_native_bf16.cache_clear()


def test_autocast_runs_on_the_tensors_device(monkeypatch):
    assert isinstance(precision.autocast("bf16", "cpu"), torch.autocast)
    assert precision.autocast("bf16", "cpu").device == "cpu"
    with warnings.catch_warnings():  # without CUDA torch disables the context, but it is built for the right device
        warnings.simplefilter("ignore")
        assert precision.autocast("bf16", torch.device("cuda")).device == "cuda"
    assert not isinstance(precision.autocast("fp32", "cpu"), torch.autocast)
    seen = []
    monkeypatch.setattr(denoiser_module, "autocast", lambda p, device: seen.append((p, device)) or nullcontext())
    d = EDMDenoiser(UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16), image_size=8, precision="bf16")
    d(torch.rand(1, 1, 8, 8), 0.5)
    assert seen == [("bf16", torch.device("cpu"))]  # the input's device, not a hard-coded one


def test_bf16_network_returns_the_input_dtype_close_to_fp32():
    torch.manual_seed(0)
    net = UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    d = EDMDenoiser(net, image_size=8, precision="fp32")
    x = torch.rand(2, 1, 8, 8)
    fp32 = d(x, 0.3)
    d.precision = "bf16"
    bf16 = d(x, 0.3)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().max() < 0.05
