from __future__ import annotations

from pathlib import Path

import pytest

from training.datasets.taxonomy import Taxonomy, load_taxonomy

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: Real data beside the checkout (tests may read it; the product never does).
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "garbage").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def yolo_rows(label_file: Path) -> list[list[float]]:
    """The numbers of every non-empty line of a YOLO label file, parsed independently of the importer."""
    return [[float(v) for v in line.split()] for line in label_file.read_text().splitlines() if line.strip()]
