"""Figure helpers shared by the notebooks: image grids, and a slider over precomputed images that needs no kernel."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _as_array(image) -> np.ndarray:
    if torch.is_tensor(image):
        image = image.detach().cpu()
        image = image.abs() if image.is_complex() else image
        image = image.double().numpy()
    image = np.asarray(image)
    return image.reshape(image.shape[-2:]) if image.ndim > 2 else image


def image_grid(rows: Sequence[Sequence], *, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, titles: Sequence[Sequence[str]] | None = None,
               cmap="gray", vmin=0.0, vmax=1.0, size: float = 1.9, aspect="equal", colorbar: str | None = None):
    """A grid of images; ``vmin``/``vmax`` of None scales each panel to its own range, and ``colorbar`` (a label,
    with units) then gives every panel its own colorbar. Returns the figure."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(row) or row[j] is None:
                ax.axis("off")
                continue
            shown = ax.imshow(_as_array(row[j]), cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect,
                              interpolation="nearest")
            if colorbar is not None:
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
            if titles is not None:
                ax.set_title(titles[i][j], fontsize=8)
            if col_labels is not None and i == 0 and titles is None:
                ax.set_title(col_labels[j], fontsize=9)
            if row_labels is not None and j == 0:
                ax.set_ylabel(row_labels[i], fontsize=9)
    if colorbar is not None:
        fig.suptitle(f"colour bars: {colorbar}", fontsize=8)
    fig.tight_layout()
    return fig


def log_magnitude(k) -> torch.Tensor:
    """``log10(|k| + 1e-3 max|k|)`` of k-space, FFT-shifted so that the centre is in the middle: the dynamic range of
    MRI data, which a linear scale shows as black outside the centre."""
    k = torch.as_tensor(k)
    magnitude = torch.fft.fftshift(k.abs(), dim=(-2, -1))
    return torch.log10(magnitude + 1e-3 * magnitude.max())


def png_bytes(image, *, cmap="gray", vmin=0.0, vmax=1.0, scale: int = 4) -> bytes:
    """One image as PNG bytes, upscaled by pixel replication (for widgets)."""
    array = np.kron(_as_array(image), np.ones((scale, scale)))
    buffer = io.BytesIO()
    plt.imsave(buffer, array, cmap=cmap, vmin=vmin, vmax=vmax, format="png")
    return buffer.getvalue()


def image_slider(frames: Sequence, labels: Sequence[str], *, description: str = "", **png_options):
    """A slider that swaps precomputed images, linked in the browser (``jslink``): it works in the static book with no
    kernel, and live in Jupyter or Binder. Returns an ``ipywidgets.VBox``."""
    import ipywidgets as widgets

    if len(frames) != len(labels) or not frames:
        raise ValueError(f"need one label per frame and at least one frame; got {len(frames)} frames, {len(labels)} labels.")
    images = [widgets.Image(value=png_bytes(f, **png_options), format="png") for f in frames]
    stack = widgets.Stack(images, selected_index=0)
    slider = widgets.SelectionSlider(options=list(labels), value=labels[0], description=description,
                                     continuous_update=True, layout=widgets.Layout(width="420px"))
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])


def save_gif(frames: Sequence, path, *, duration_ms: int = 80, scale: int = 4, vmin=0.0, vmax=1.0) -> None:
    """Write images as an animated GIF (gray, upscaled by pixel replication), the last frame held longer."""
    from PIL import Image

    images = [Image.fromarray((np.clip((np.kron(_as_array(f), np.ones((scale, scale))) - vmin) / (vmax - vmin), 0, 1)
                               * 255).astype(np.uint8)) for f in frames]
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 15]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)


def error_map(x, reference):
    """Absolute error image, for panels shown with their own colour scale."""
    return (_as_tensor(x) - _as_tensor(reference)).abs()


def _as_tensor(x):
    return torch.as_tensor(_as_array(x))


def with_error(x, reference, gain: float = 3.0) -> torch.Tensor:
    """An image and its absolute error (times ``gain``) side by side, for sliders that show both."""
    x, reference = _as_tensor(x), _as_tensor(reference)
    return torch.cat([x, torch.ones(x.shape[0], 2, dtype=x.dtype), gain * (x - reference).abs()], dim=1)


def mean_se_plot(ax, xs, values: torch.Tensor, label: str, **style):
    """Mean over the last axis with a band of one standard error, against ``xs``; ``values`` is ``(len(xs), N)``."""
    values = torch.as_tensor(values, dtype=torch.float64)
    mean = values.mean(1)
    se = values.std(1) / values.shape[1] ** 0.5 if values.shape[1] > 1 else torch.zeros_like(mean)
    (line,) = ax.plot(xs, mean, marker="o", label=label, **style)
    ax.fill_between(xs, mean - se, mean + se, color=line.get_color(), alpha=0.2)
    return line


class Phrase(str):
    """Words to glue into the book's prose: shown as they are by ``{glue:text}`` (glued ``IPython.display.Markdown``
    objects cannot be pasted across documents). Its text/plain is the quoted string: myst-nb literal-evaluates that text
    before pasting it, which would turn "[+0.52, +0.95]" into a list and "0.50" into 0.5; a quoted string comes back
    as itself, without its quotes."""

    def __repr__(self) -> str:
        return repr(str(self))


def panel_rows(rows: Sequence[dict], *, size: float = 1.9, title_size: int = 8):
    """A figure of rows of image panels, each row on one colour scale with its own colorbar and label.

    Each row is a dict: ``images`` (a list, None leaves a gap), ``titles``, ``label`` (the colorbar's, with units),
    and optional ``cmap``, ``vmin``, ``vmax`` (default: the row's range) and ``name`` (the row's label on the left).
    Panels that are compared share a row, so they share a scale."""
    n_cols = max(len(r["images"]) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols + 1, figsize=(size * n_cols + 0.6, size * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * n_cols + [0.07]})
    for axes_row, row in zip(axes, rows):
        arrays = [None if im is None else _as_array(im) for im in row["images"]]
        present = [a for a in arrays if a is not None]
        vmin = row.get("vmin", min(float(a.min()) for a in present))
        vmax = row.get("vmax", max(float(a.max()) for a in present))
        shown = None
        for ax, array, title in zip(axes_row[:-1], arrays + [None] * n_cols, list(row.get("titles", [])) + [""] * n_cols):
            ax.set_xticks([])
            ax.set_yticks([])
            if array is None:
                ax.axis("off")
                continue
            shown = ax.imshow(array, cmap=row.get("cmap", "gray"), vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=title_size)
        if row.get("name"):  # on the first panel that is drawn (an empty one is switched off, label and all)
            first = next(ax for ax, array in zip(axes_row, arrays) if array is not None)
            first.set_ylabel(row["name"], fontsize=title_size + 1)
        fig.colorbar(shown, cax=axes_row[-1]).set_label(row.get("label", ""), fontsize=title_size)
    fig.tight_layout()
    return fig


def at_psnr(image: torch.Tensor, target_db: float, kind: str, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``image`` (``(H, W)``, range [0, 1]) degraded to exactly ``target_db`` PSNR, to show a reader what a PSNR looks
    like: ``kind="noise"`` adds white Gaussian noise of the matching standard deviation; ``kind="blur"`` blurs with the
    Gaussian width found by bisection on the width (to 1e-4 pixels). Not a reconstruction: the two kinds of error reconstructions make,
    each alone."""
    import scipy.ndimage as ndi

    from recon.metrics import psnr

    image = image.double()
    rms = 10 ** (-target_db / 20)  # PSNR = -20 log10(rms error) on a data range of 1
    if kind == "noise":
        noise = torch.randn(image.shape, generator=generator, dtype=torch.float64)
        return image + noise * rms / noise.pow(2).mean().sqrt()
    if kind != "blur":
        raise ValueError(f"kind must be 'noise' or 'blur'; got {kind!r}.")
    blurred = lambda width: torch.from_numpy(ndi.gaussian_filter(image.numpy(), width))
    score = lambda width: float(psnr(blurred(width)[None, None], image[None, None])[0])
    low, high = 0.0, 16.0
    if score(high) > target_db:
        raise ValueError(f"no blur of up to {high} pixels brings this image down to {target_db} dB; ask for more.")
    while high - low > 1e-4:  # PSNR falls as the blur widens
        middle = (low + high) / 2
        low, high = (middle, high) if score(middle) > target_db else (low, middle)
    return blurred(high)
