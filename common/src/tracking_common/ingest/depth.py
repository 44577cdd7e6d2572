"""The JSON nesting-depth limit, checked on decoded values without recursion."""

from __future__ import annotations

from typing import Any

__all__ = ["nests_deeper"]


def nests_deeper(document: Any, limit: int) -> bool:
    """True if ``document`` nests deeper than ``limit`` levels (a scalar is 0, ``{}`` is 1).

    Walks one level at a time with comprehensions that keep only containers: scalars, most of
    any document, cost no Python-level step of their own.
    """
    level = [document] if type(document) is dict or type(document) is list else []
    depth = 1
    while level:
        if depth > limit:
            return True
        level = [
            child
            for value in level
            for child in (value.values() if type(value) is dict else value)
            if type(child) is dict or type(child) is list
        ]
        depth += 1
    return False
