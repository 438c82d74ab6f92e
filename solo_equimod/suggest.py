"""Did-you-mean for a mistyped setting or config name: the closest valid names, for error messages."""

from __future__ import annotations

import difflib
from typing import Iterable


def _initials(name: str) -> str:
    """`learning_rate` -> `lr`: the first letter of each `_`/`-` separated part."""
    return "".join(part[0] for part in name.replace("-", "_").split("_") if part)


def closest(word: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` names of `valid` close to `word`: spelled alike (difflib, ratio >= 0.6), or one is the
    other's initials (`learning_rate` and `lr`), since an abbreviation is far from its long form in
    edit distance while being the likeliest meaning."""
    names = list(valid)
    abbreviations = [name for name in names if len(name) > 1 and (name == _initials(word) or _initials(name) == word)]
    alike = difflib.get_close_matches(word, names, n=n, cutoff=0.6)
    return list(dict.fromkeys([*alike, *abbreviations]))[:n]


def did_you_mean(word: str, valid: Iterable[str], prefix: str = "") -> str:
    """`did you mean optimizer.lr? ` (with `prefix` before each name), or "" when nothing is close."""
    near = closest(word, valid)
    return f"did you mean {' or '.join(prefix + name for name in near)}? " if near else ""
