"""The examples in the rules modules' docstrings run as tests."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from edge.rules import class_map, co_occurrence, zones


@pytest.mark.parametrize("module", [class_map, co_occurrence, zones], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
