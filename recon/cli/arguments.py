"""Parsing shared by the command lines."""

from __future__ import annotations

import json


def key_values(pairs: list[str], flag: str, example: str) -> dict:
    """``KEY=VALUE`` pairs as a dict, each value read as JSON where it is JSON (numbers, lists, true) and as a string
    otherwise; a pair without ``=`` is an error naming ``flag`` and an ``example``."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {pair!r}: write KEY=VALUE, e.g. {flag} {example}.")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
