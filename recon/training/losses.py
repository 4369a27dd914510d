"""Training losses as small callables ``loss(model, x0, generator) -> scalar`` that one loop can train. Per-example
randomness goes through :func:`recon.training.distributed.draw_randn`, so that a run split over processes draws what
one process would (on one process it is ``torch.randn`` itself)."""

from __future__ import annotations

import torch

from recon.models.denoiser import EDMDenoiser
from recon.training.distributed import draw_rand, draw_randn


class EDMLoss:
    """EDM's weighted denoising loss (Karras et al. 2022, eq. 2 with Table 1): ``sigma`` log-normal with ``p_mean``,
    ``p_std`` in the [-1, 1] space of the preconditioning, weight ``(s^2 + sd^2) / (s sd)^2``, so that the
    network's effective target has unit variance at every noise level."""

    name = "edm"

    def __init__(self, p_mean: float = -1.2, p_std: float = 1.2, label_dropout: float = 0.1):
        if not 0 <= label_dropout < 1:
            raise ValueError(f"label_dropout is a probability in [0, 1); got {label_dropout}.")
        self.p_mean, self.p_std, self.label_dropout = p_mean, p_std, label_dropout

    def config(self) -> dict:
        return {"name": self.name, "p_mean": self.p_mean, "p_std": self.p_std, "label_dropout": self.label_dropout}

    def sample_sigma(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        """Noise levels in image units (half those of the [-1, 1] space)."""
        return torch.exp(self.p_mean + self.p_std * draw_randn((batch,), generator, device)) / 2

    def per_example(self, model: EDMDenoiser, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor,
                    labels: torch.Tensor | None = None):
        """The weighted squared error in the [-1, 1] space per example, for given ``sigma`` (B,) and unit ``noise``
        (and class ``labels`` for a class-conditional network)."""
        s, sd = 2 * sigma, model.sigma_data
        weight = ((s**2 + sd**2) / (s * sd) ** 2).reshape(-1, 1, 1, 1)
        extra = {} if labels is None else {"labels": labels}
        error = 2 * (model(x0 + sigma.reshape(-1, 1, 1, 1) * noise, sigma, **extra) - x0)
        return (weight * error.float() ** 2).flatten(1).mean(1)

    def drop_labels(self, labels: torch.Tensor, classes: int, generator: torch.Generator) -> torch.Tensor:
        """Each label replaced by the "no label" entry ``classes`` with probability ``label_dropout``, so that one
        network learns the conditional and the unconditional denoiser (Ho & Salimans 2022)."""
        drop = draw_rand(labels.shape, generator, labels.device) < self.label_dropout
        return torch.where(drop, torch.full_like(labels, classes), labels)

    def __call__(self, model: EDMDenoiser, x0: torch.Tensor, generator: torch.Generator,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = self.sample_sigma(x0.shape[0], generator, x0.device)
        noise = draw_randn(x0.shape, generator, x0.device)
        if labels is not None:
            labels = self.drop_labels(labels, model.net.classes, generator)
        return self.per_example(model, x0, sigma, noise, labels).mean()


class ECTLoss:
    """Easy consistency tuning (Geng et al. 2025): from a diffusion prior's weights, make ``f(x_t, t)`` agree with the
    stopped-gradient ``f(x_r, r)`` on the same noise direction, for a gap ``t - r`` that shrinks in stages.

    In the [-1, 1] space of the preconditioning: ``t`` log-normal (``p_mean``, ``p_std``); stage ``n = step //
    stage_every``; ``r = t (1 - q^-(n+1) (1 + k sigmoid(-b t)))``, clipped at 0 (stage 0 is mostly denoising: where
    ``r`` reaches the boundary, ``f(x_r, r) = x_r`` is the clean image). Distance: the pseudo-Huber metric of
    Song & Dhariwal 2024, ``sqrt(||a - b||^2 + c^2) - c`` with ``c = 0.00054 sqrt(pixels)``; weight ``1 / (t - r)``.
    The training loop announces each step through :meth:`at_step`."""

    name = "ect"

    def __init__(self, p_mean: float = -1.1, p_std: float = 2.0, q: float = 2.0, k: float = 8.0, b: float = 1.0,
                 stage_every: int = 400, huber: float = 0.00054):
        if stage_every < 1 or q <= 1:
            raise ValueError(f"need stage_every >= 1 and q > 1; got stage_every={stage_every}, q={q}.")
        self.p_mean, self.p_std, self.q, self.k, self.b = p_mean, p_std, q, k, b
        self.stage_every, self.huber, self.step = stage_every, huber, 0

    def config(self) -> dict:
        return {"name": self.name, "p_mean": self.p_mean, "p_std": self.p_std, "q": self.q, "k": self.k, "b": self.b,
                "stage_every": self.stage_every, "huber": self.huber}

    def at_step(self, step: int) -> None:
        self.step = step

    def gap_end(self, t: torch.Tensor) -> torch.Tensor:
        """``r(t)`` at the current stage, in the [-1, 1] space (ECT's sigmoid mapping)."""
        decay = self.q ** -(self.step // self.stage_every + 1)
        return (t * (1 - decay * (1 + self.k * torch.sigmoid(-self.b * t)))).clamp_min(0)

    def __call__(self, model, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = draw_randn((x0.shape[0],), generator, x0.device)
        t = torch.exp(self.p_mean + self.p_std * n).clamp(2 * model.sigma_min * 1.01, 2 * model.sigma_max)
        r = torch.maximum(self.gap_end(t), torch.full_like(t, 2 * model.sigma_min))  # at the boundary f(x, r) = x
        noise = draw_randn(x0.shape, generator, x0.device)
        sigma_t, sigma_r = t / 2, r / 2
        f_t = model(x0 + sigma_t.reshape(-1, 1, 1, 1) * noise, sigma_t)
        with torch.no_grad():
            f_r = model(x0 + sigma_r.reshape(-1, 1, 1, 1) * noise, sigma_r)
        squared = (2 * (f_t - f_r)).float().pow(2).flatten(1).sum(1)
        c = self.huber * x0[0].numel() ** 0.5
        return (((squared + c**2).sqrt() - c) / (t - r)).mean()


class SupervisedLoss:
    """Supervised training of a post-processing network on (classical reconstruction, image) pairs, simulated as the
    test data are: each batch holds renderings ``factor`` times finer than the image grid, measured off the
    reconstruction grid (``operator.A_fine``, no inverse crime) without noise by one setting drawn from ``settings``
    (:func:`recon.operators.settings.make_operator` names) and, for MRI, one of ``mask_seeds`` mask draws (seeds 1 to
    ``mask_seeds``; seed 0, the test mask, is held out); reconstructed classically (FBP or zero-filled); scored by the
    mean squared error to the image, the fine rendering averaged per pixel (Jin et al. 2017)."""

    name = "supervised"

    def __init__(self, settings: list[str], image_size: int = 64, factor: int = 2, mask_seeds: int = 64):
        from recon.operators.settings import make_operator

        if not settings:
            raise ValueError("supervised training needs at least one setting, e.g. --settings ct:16.")
        for setting in settings:
            make_operator(setting, image_size)  # a bad name fails here, before any training
        self.settings, self.image_size, self.factor, self.mask_seeds = list(settings), image_size, factor, mask_seeds
        self._operators = {}

    def config(self) -> dict:
        return {"name": self.name, "settings": self.settings, "factor": self.factor, "mask_seeds": self.mask_seeds}

    def operator(self, setting: str, seed: int):
        from recon.operators.settings import make_operator

        key = (setting, seed if setting.startswith("mri") else 0)
        if key not in self._operators:
            self._operators[key] = make_operator(setting, self.image_size, seed=key[1])
        return self._operators[key]

    def __call__(self, model, fine: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from recon.operators.settings import classical

        draw = torch.randint(1 << 30, (2,), generator=generator, device=generator.device).tolist()
        operator = self.operator(self.settings[draw[0] % len(self.settings)], 1 + draw[1] % self.mask_seeds)
        truth = torch.nn.functional.avg_pool2d(fine, self.factor)
        x_classical = classical(operator, operator.A_fine(fine)).to(fine.dtype)
        return (model(x_classical) - truth).float().pow(2).mean()


LOSSES = {"edm": EDMLoss, "ect": ECTLoss, "supervised": SupervisedLoss}
