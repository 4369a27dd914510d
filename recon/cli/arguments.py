"""What the command lines share: ``KEY=VALUE`` pairs, the prior that ``--prior`` names (its card and its network, the
library's errors about the checkpoint turned into :class:`~recon.cli.errors.UsageError`), and the memory bound
(``--max-memory``) and the views bound a run is checked against before it starts."""

from __future__ import annotations

import json
from pathlib import Path

from recon.cli.errors import UsageError
from recon.data.folder import MIN_SIDE
from recon.models.checkpoints import load_card, resolve
from recon.operators.settings import MAX_VIEWS_PER_PIXEL
from recon.reconstruction import load_prior

# What a checkpoint that is missing, truncated, edited or of another kind raises while it is read.
CHECKPOINT_ERRORS = (ValueError, KeyError, TypeError, OSError)
DEFAULT_MAX_MEMORY_GIB = 4.0
# The network's working memory per image in a batch and pixel, with gradients: 31 MB per 64 x 64 image measured for the
# shipped priors (DPS, training).
NETWORK_BYTES_PER_PIXEL = 8192


def key_values(pairs: list[str], flag: str, example: str) -> dict:
    """``KEY=VALUE`` pairs as a dict, each value read as JSON where it is JSON (numbers, lists, true) and as a string
    otherwise; a pair without ``=`` is an error naming ``flag`` and an ``example``."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {pair!r}: write KEY=VALUE, e.g. {flag} {example}.")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def checkpoint_error(prior: str, error: Exception) -> UsageError:
    """The one-line error for a checkpoint that cannot be used, naming ``--prior``; the library's ValueError and
    FileNotFoundError say their fix, other errors (a card entry missing or of the wrong type) get one."""
    if isinstance(error, (ValueError, FileNotFoundError)):
        return UsageError(f"--prior {prior}: {str(error).splitlines()[0]}")
    return UsageError(f"--prior {prior}: its card or weights cannot be used ({type(error).__name__}: {error}); restore "
                      "the checkpoint folder, retrain it with `python -m recon.train`, or pass a shipped prior.")


def prior_card(prior: str) -> tuple[Path, dict, int]:
    """``(folder, card, image size)`` of the checkpoint ``--prior`` names."""
    try:
        path = resolve(prior)
        card = load_card(path)
        size = card["config"]["image_size"]
    except CHECKPOINT_ERRORS as error:
        raise checkpoint_error(prior, error) from None
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIDE:
        raise UsageError(f"--prior {prior}: its card's config.image_size is {size!r}, not an image size (an integer of "
                         f"{MIN_SIDE} pixels or more); restore the card or retrain the prior.")
    return path, card, size


def check_views(views: int, size: int, what: str) -> None:
    """Refuse more CT views than a ``size``-pixel grid can use (:data:`MAX_VIEWS_PER_PIXEL` per pixel of the side;
    about 1.5 per pixel already sample the angle fully); ``what`` names the option in the message."""
    if views > MAX_VIEWS_PER_PIXEL * size:
        raise UsageError(f"{what}: more views than a {size}-pixel prior can use (at most {MAX_VIEWS_PER_PIXEL} x {size} "
                         f"= {MAX_VIEWS_PER_PIXEL * size}; about {size * 3 // 2} sample the angle fully); pass fewer "
                         "views.")


def prior_network(prior: str, path: Path, device: str, precision: str = "auto"):
    """The checkpoint's network, verified against its card (checksums, kind, weight shapes) as it loads."""
    try:
        return load_prior(str(path), device, precision)
    except CHECKPOINT_ERRORS as error:
        raise checkpoint_error(prior, error) from None


def add_max_memory(parser) -> None:
    parser.add_argument("--max-memory", type=float, default=DEFAULT_MAX_MEMORY_GIB, metavar="GIB",
                        help="refuse a run whose estimated memory exceeds this many GiB (checked before it starts)")


def check_memory(parts: dict[str, float], limit_gib: float, fix: str) -> None:
    """Refuse a run whose estimated memory (bytes by what needs it) exceeds ``limit_gib``; ``fix`` says what to lower."""
    total = sum(parts.values())
    if total > limit_gib * 2**30:
        listed = ", ".join(f"{name} {value / 2**30:.2f}" for name, value in parts.items() if value >= 2**30 / 200)
        raise UsageError(f"the run would need about {total / 2**30:.1f} GiB ({listed}), above --max-memory "
                         f"{limit_gib:g} GiB; {fix}, or raise --max-memory if the machine has the memory.")
