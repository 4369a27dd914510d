"""A Gaussian-mixture prior with everything exact: its denoiser at any noise level, its log-density, and the posterior
given linear measurements. The 2-D pictures of the book, and the tests of samplers and guides, use it where a network
would hide the truth."""

from __future__ import annotations

import dataclasses
import math

import torch

from recon.models.denoiser import Denoiser, sigma_batch


def _component_terms(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor, log_weights: torch.Tensor):
    """Per point and component: the log of ``w_k N(x; m_k, C_k)`` ``(B, K)`` and ``C_k^-1 (x - m_k)`` ``(B, K, d)``."""
    diff = x[:, None, :] - means[None]  # (B, K, d)
    chol = torch.linalg.cholesky(covs)  # (K, d, d)
    solved = torch.cholesky_solve(diff.permute(1, 2, 0), chol).permute(2, 0, 1)  # C_k^-1 (x - m_k)
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    d = x.shape[1]
    log_pdf = -0.5 * ((diff * solved).sum(-1) + log_det + d * math.log(2 * math.pi))
    return log_weights + log_pdf, solved


@dataclasses.dataclass
class GaussianMixture:
    """``x ~ sum_k w_k N(m_k, C_k)`` over flattened images of ``shape`` (``d`` pixels); float64."""

    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, d)
    covs: torch.Tensor  # (K, d, d)
    shape: tuple[int, ...]

    def __post_init__(self):
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64)
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.covs = torch.as_tensor(self.covs, dtype=torch.float64)
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covs.shape != (k, d, d) or math.prod(self.shape) != d:
            raise ValueError(f"a mixture of K = {k} components in d = {d} pixels needs weights (K,), covs (K, d, d) "
                             f"and an image shape of d pixels; got {tuple(self.weights.shape)}, "
                             f"{tuple(self.covs.shape)}, {self.shape}.")
        if not (self.weights > 0).all():
            raise ValueError("mixture weights must be positive.")
        self.weights = self.weights / self.weights.sum()

    def noised(self, sigma: float) -> GaussianMixture:
        """The mixture of ``x + sigma z``: every covariance plus ``sigma^2 I``."""
        eye = torch.eye(self.means.shape[1], dtype=torch.float64)
        return GaussianMixture(self.weights, self.means, self.covs + sigma**2 * eye, self.shape)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` for ``x`` of shape ``(B, d)`` or ``(B, *shape)``."""
        terms, _ = _component_terms(x.reshape(x.shape[0], -1).double(), self.means, self.covs, self.weights.log())
        return torch.logsumexp(terms, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """``grad log p(x)``, shaped like ``x``."""
        terms, solved = _component_terms(x.reshape(x.shape[0], -1).double(), self.means, self.covs,
                                         self.weights.log())
        resp = torch.softmax(terms, dim=1)
        return -(resp[..., None] * solved).sum(1).reshape(x.shape).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shaped ``(n, *shape)``."""
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.covs)[component]
        return (self.means[component] + (chol @ z[..., None])[..., 0]).reshape(n, *self.shape)

    def posterior(self, matrix: torch.Tensor, y: torch.Tensor, noise_std: float = 0.0) -> GaussianMixture:
        """The exact posterior given one measurement ``y = matrix x + eps``, ``eps ~ N(0, noise_std^2 I)``: again a
        mixture, each component conditioned in closed form and reweighted by its evidence ``N(y; M m_k, M C_k M^T +
        noise_std^2 I)``. With ``noise_std = 0``, ``M C_k M^T`` must be invertible."""
        matrix = torch.as_tensor(matrix, dtype=torch.float64)
        y = torch.as_tensor(y, dtype=torch.float64).reshape(-1)
        s = matrix @ self.covs @ matrix.T + noise_std**2 * torch.eye(matrix.shape[0], dtype=torch.float64)
        gain = self.covs @ matrix.T @ torch.linalg.inv(s)  # (K, d, m)
        innovation = y[None] - self.means @ matrix.T  # (K, m)
        means = self.means + (gain @ innovation[..., None])[..., 0]
        covs = self.covs - gain @ matrix @ self.covs
        covs = 0.5 * (covs + covs.transpose(-1, -2)) + 1e-12 * torch.eye(covs.shape[-1], dtype=torch.float64)
        evidence, _ = _component_terms(y[None], self.means @ matrix.T, s, self.weights.log())
        return GaussianMixture(torch.softmax(evidence[0], 0), means, covs, self.shape)

    def mean(self) -> torch.Tensor:
        return (self.weights[:, None] * self.means).sum(0).reshape(self.shape)


class GaussianMixtureDenoiser(Denoiser):
    """The exact denoiser of a :class:`GaussianMixture`: ``D(x, sigma) = x + sigma^2 grad log p_sigma(x)`` (Tweedie),
    with ``p_sigma`` the mixture noised to ``sigma``."""

    def __init__(self, mixture: GaussianMixture, sigma_min: float = 1e-3, sigma_max: float = 100.0):
        self.mixture = mixture
        self.image_size = mixture.shape[-1]
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigmas = sigma_batch(sigma, x.double())
        out = torch.empty_like(x, dtype=torch.float64)
        for value in sigmas.unique():
            rows = sigmas == value
            score = self.mixture.noised(float(value)).score(x[rows].double())
            out[rows] = x[rows].double() + float(value) ** 2 * score
        return out.to(x.dtype)
