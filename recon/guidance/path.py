"""The λ-free path-guided steps the post proposes: reach ``{x : A x = y_t}`` along a path the prior finds likely.

Song et al.'s step moves ``x`` a fraction ``lam`` of the way to its projection ``P(x) = x + A^+(y_t - A x)``. The post
proposes to let the prior choose the path, with no ``lam``: (a) **score filtering**, evaluate the score, keep only
its components that move toward the hyperplane, step, repeat; (b) **a grid and a shortest path**, evaluate the score
on grid points between ``x`` and the hyperplane and follow the path of largest total score.

Both are guides (``before`` hooks) that call the denoiser themselves, so every evaluation on a path counts in the
NFE; the grid guide hands its evaluation at the point it returns to the sampler through a :class:`ReusingDenoiser`
they share, the one channel between them. Without noise the feasible set is ``A^+ y_t + null(A)``: a path that ends on it and moves only the row-space part
of ``x`` ends at ``P(x)``, the ``lam = 1`` step; the guides therefore differ from Song et al.'s step only where they
stop short of the hyperplane, which is where the prior disagrees with the data (that is the ``lam`` they choose), and,
for the grid's lateral lanes, by moving the null-space part.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from recon._checks import check_positive_int
from recon.guidance.proximal import SIGMA_FORM, MeasurementGuide
from recon.operators.base import LinearOperator
from recon.sampling.conditional import y_t
from recon.sampling.hooks import StepContext


def evaluations_per_step(variant: str = "filter", substeps: int = 1, points: int = 4, lateral: int = 0) -> int:
    """Network evaluations per sampler step of a path variant, the sampler's own included: ``substeps + 1`` for
    ``"filter"``, ``(points + 1)(2 lateral + 1)`` for ``"grid"`` (the chosen node's evaluation is reused)."""
    if variant == "filter":
        return substeps + 1
    if variant == "grid":
        return (points + 1) * (2 * lateral + 1)
    raise ValueError(f"unknown path variant {variant!r}; choose 'filter' (score filtering) or 'grid' (grid and "
                     "shortest path).")


def agreement(move: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Per measurement, the share of ``residual`` that ``move`` (both in measurement space) covers, clipped to
    ``[0, 1]``: ``Re(move conj(residual)) / |residual|^2``. Zero where the move points away from the data or the
    residual is zero; one where the move reaches the data or beyond."""
    numerator = (move * residual.conj()).real if residual.is_complex() else move * residual
    denominator = (residual.abs() ** 2).clamp_min(torch.finfo(numerator.dtype).tiny)
    return (numerator / denominator).clamp(0.0, 1.0)


def score_filtered_step(x: torch.Tensor, denoised: torch.Tensor, target: torch.Tensor,
                        operator: LinearOperator) -> torch.Tensor:
    """One substep of path (a): the prior's move ``D(x) - x`` (the score times ``sigma^2``), seen in measurement space,
    keeps per measurement only the part that moves ``A x`` toward ``target`` and no further; the kept residual is
    mapped back by ``A^+``. All kept: the ``lam = 1`` step; none: no move."""
    residual = target - operator.A(x)
    keep = agreement(operator.A(denoised - x), residual)
    return x + operator.A_pinv(keep * residual)  # Score-filtered step toward A x = y_t.


class ReusingDenoiser:
    """The denoiser shared by a path guide and its sampler, with a one-entry cache through which the guide hands over
    an evaluation it has made: the guide stores ``(x, sigma, D(x, sigma))`` for the point it returns
    (:meth:`remember`); the sampler's next call, which evaluates the network at that point, gets the stored estimate
    free when it asks at the same ``sigma`` for a tensor equal in value to ``x`` (``D`` is a function of
    ``(x, sigma)``, so the answer is the one the network would give). The entry is used once; any other call goes
    to the wrapped denoiser."""

    def __init__(self, denoiser):
        self.denoiser, self.memo = denoiser, None

    def remember(self, x: torch.Tensor, sigma: float, denoised: torch.Tensor) -> None:
        """Hand ``denoised = D(x, sigma)`` to the next call at ``(x, sigma)``."""
        self.memo = (x, sigma, denoised)

    def __call__(self, x: torch.Tensor, sigma):
        memo, self.memo = self.memo, None
        if memo is not None and memo[1] == sigma and memo[0].shape == x.shape and torch.equal(memo[0], x):
            return memo[2]
        return self.denoiser(x, sigma)

    def __getattr__(self, name):
        return getattr(self.denoiser, name)


class PathFilterGuide(MeasurementGuide):
    """Path (a), iterative score filtering: ``substeps`` times, evaluate ``D(x, sigma)`` and take
    :func:`score_filtered_step` toward ``y_t`` (a fresh draw per sampler step, as Song et al.'s step uses).

    There is no ``lam``: per measurement, the prior decides how far toward the data to go. ``substeps`` trades cost
    for path resolution: each one costs a network evaluation and re-asks the prior at the moved point, so the path can
    bend where the score changes along it.

    Args:
        operator, y: the measurement process and its measurements ``(B, *measurement_shape)``.
        denoiser: ``D(x, sigma)``, the prior (its evaluations count in the NFE).
        substeps: network evaluations per sampler step (>= 1).
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, denoiser, substeps: int = 1):
        super().__init__(operator, y, 1.0)
        self.denoiser, self.substeps = denoiser, check_positive_int(substeps, "substeps")

    history: list | None = None  # set to a list to record (sigma, mean share of the residual kept) per substep

    def path(self, x: torch.Tensor, target: torch.Tensor, sigma: float) -> list[torch.Tensor]:
        """The points of the path from ``x`` toward ``A x = target`` at noise level ``sigma``, ``x`` first."""
        points = [x]
        for _ in range(self.substeps):
            before = points[-1]
            points.append(score_filtered_step(before, self.denoiser(before, sigma), target, self.operator))
            if self.history is not None:
                kept = self.operator.A(points[-1] - before).abs().flatten(1).norm(dim=1)
                whole = (target - self.operator.A(before)).abs().flatten(1).norm(dim=1).clamp_min(1e-12)
                self.history.append((sigma, float((kept / whole).mean())))
        return points

    def before(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        target = y_t(self.y, self.operator, SIGMA_FORM, ctx.sigma, ctx.generator)
        return self.path(x, target, ctx.sigma)[-1]


def segment_gains(nodes: torch.Tensor, scores: torch.Tensor, edges: list[tuple[int, int]]) -> torch.Tensor:
    """The change of log-density along each straight edge between grid nodes, by the trapezoid rule on the score:
    ``0.5 (s_a + s_b) . (x_b - x_a)``. ``nodes`` and ``scores`` are ``(B, N, ...)``; returns ``(B, len(edges))``."""
    a, b = (torch.tensor(i, device=nodes.device) for i in zip(*edges))
    step = (nodes[:, b] - nodes[:, a]).flatten(2)
    return (0.5 * (scores[:, a] + scores[:, b]).flatten(2) * step).sum(-1)


def layered_edges(points: int, lanes: int) -> list[tuple[int, int]]:
    """Edges of the grid graph: node ``k * lanes + j`` (layer ``k`` of ``points + 1`` along the segment, lane ``j``)
    links to the next layer's lanes ``j - 1, j, j + 1``."""
    return [(k * lanes + j, (k + 1) * lanes + jj) for k in range(points) for j in range(lanes)
            for jj in (j - 1, j, j + 1) if 0 <= jj < lanes]


def best_path(gains: np.ndarray, edges: list[tuple[int, int]], n_nodes: int, source: int, targets: list[int]):
    """The path from ``source`` to one of ``targets`` with the largest total gain, by Dijkstra
    (:func:`scipy.sparse.csgraph.dijkstra`) on costs ``c - gain`` with ``c`` the largest gain: non-negative, and
    since every source-to-target path of the layered graph has the same number of edges, the shift changes no
    ranking. Returns the node list from ``source``."""
    shift = gains.max() + 1e-12 * max(1.0, abs(gains.max()))
    rows, cols = zip(*edges)
    graph = coo_matrix((shift - gains, (rows, cols)), shape=(n_nodes, n_nodes)).tocsr()
    distance, predecessor = dijkstra(graph, directed=True, indices=source, return_predecessors=True)
    node = min(targets, key=lambda t: distance[t])
    path = [node]
    while node != source:
        node = int(predecessor[node])
        path.append(node)
    return path[::-1]


class PathGridGuide(MeasurementGuide):
    """Path (b), a grid and a shortest path: ``points + 1`` nodes on the segment from ``x`` to ``P(x)`` (fractions
    ``k / points``) times ``2 lateral + 1`` lanes offset along the null-space part of the score at ``x`` (the prior's
    preferred direction that leaves ``A x`` unchanged), spaced like the segment's nodes. The network is evaluated at
    every node; the gain of an edge is the change of ``log p_sigma`` along it (:func:`segment_gains`); the path of
    largest total gain to the hyperplane is found by :func:`best_path`, and the step stops at the node of that path
    where the accumulated gain peaks. With ``lateral = 0`` the stop is the point of the segment that the prior
    finds most likely: a ``lam`` chosen per image and per noise level by the prior instead of a tuner.

    The network's output at the chosen node is handed to the sampler through the :class:`ReusingDenoiser` both hold
    (:meth:`ReusingDenoiser.remember`), so a step costs ``(points + 1)(2 lateral + 1)`` evaluations in all.

    Args:
        operator, y: the measurement process and its measurements.
        denoiser: ``D(x, sigma)``; wrap it in :class:`ReusingDenoiser` and give the same object to the sampler to
            reuse the chosen node's evaluation.
        points: segments along the path (>= 1): the resolution of the chosen stop.
        lateral: lanes on each side (>= 0): how far the path may leave the straight segment.
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, denoiser, points: int = 4, lateral: int = 0):
        super().__init__(operator, y, 1.0)
        self.denoiser, self.points = denoiser, check_positive_int(points, "points")
        if not (isinstance(lateral, int) and lateral >= 0):
            raise ValueError(f"lateral must be an integer >= 0 (lanes on each side of the segment); got {lateral!r}.")
        self.lateral = lateral

    def grid(self, x: torch.Tensor, direction: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        """Grid nodes ``(B, (points + 1)(2 lateral + 1), ...)``: ``x + (k / points) direction + (j - lateral) side``."""
        k = torch.arange(self.points + 1, dtype=x.dtype, device=x.device) / self.points
        j = torch.arange(-self.lateral, self.lateral + 1, dtype=x.dtype, device=x.device)
        shape = (1, -1) + (1,) * (x.dim() - 1)
        along = k.repeat_interleave(j.numel()).reshape(shape)
        across = j.repeat(k.numel()).reshape(shape)
        return x[:, None] + along * direction[:, None] + across * side[:, None]

    history: list | None = None  # set to a list to record (sigma, mean fraction of the segment taken) per step

    def before(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        target = y_t(self.y, self.operator, SIGMA_FORM, ctx.sigma, ctx.generator)
        plan = self.plan(x, target, ctx.sigma)
        index = torch.arange(x.shape[0], device=x.device)
        picked = torch.tensor([p[s] for p, s in zip(plan["paths"], plan["stops"])], device=x.device)
        x_out, d_out = plan["nodes"][index, picked].contiguous(), plan["denoised"][index, picked].contiguous()
        if isinstance(self.denoiser, ReusingDenoiser):
            self.denoiser.remember(x_out, ctx.sigma, d_out)
        if self.history is not None:
            lanes = 2 * self.lateral + 1
            self.history.append((ctx.sigma, float(sum(int(c) // lanes for c in picked.tolist())) / (self.points * len(x))))
        return x_out

    def plan(self, x: torch.Tensor, target: torch.Tensor, sigma: float) -> dict:
        """The grid at ``x`` toward ``A x = target``: ``nodes`` and ``denoised`` ``(B, N, ...)``, and per image the
        best path (node indices from ``x``) and the position on it where the step stops."""
        op = self.operator
        direction = op.A_pinv(target - op.A(x))
        start = self.denoiser(x, sigma)
        side = torch.zeros_like(x)
        if self.lateral:
            move = start - x
            null = move - op.A_pinv(op.A(move))  # The prior's move with its row-space part removed.
            norm = null.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (x.dim() - 1)))
            side = null / norm * direction.flatten(1).norm(dim=1).reshape(norm.shape) / self.points
        nodes = self.grid(x, direction, side)
        lanes, n = 2 * self.lateral + 1, nodes.shape[1]
        centre = self.lateral  # node 0 * lanes + lateral is x itself
        others = [i for i in range(n) if i != centre]
        flat = nodes[:, others].reshape(-1, *x.shape[1:])
        denoised = torch.empty_like(nodes)
        denoised[:, centre] = start
        denoised[:, others] = self.denoiser(flat, sigma).reshape(x.shape[0], len(others), *x.shape[1:])
        scores = (denoised - nodes) / sigma**2
        edges = layered_edges(self.points, lanes)
        gains = segment_gains(nodes.double(), scores.double(), edges).cpu().numpy()
        paths = [best_path(g, edges, n, centre, list(range(n - lanes, n))) for g in gains]
        index = {edge: i for i, edge in enumerate(edges)}
        stops = [int(np.argmax(np.cumsum([0.0] + [g[index[e]] for e in itertools.pairwise(p)])))
                 for g, p in zip(gains, paths)]  # where the accumulated gain of log p peaks
        return {"nodes": nodes, "denoised": denoised, "paths": paths, "stops": stops}
