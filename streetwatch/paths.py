"""Where the repository's shipped files live (models, taxonomy, sample images).

StreetWatch runs from a checkout (``pip install -e``); shipped data sits beside
the Python packages, not inside them, so one copy serves the edge, the server
and training. ``STREETWATCH_HOME`` overrides the root for packaged installs.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The folder that holds ``models/``, ``datasets/`` and ``deploy/``."""
    override = os.environ.get("STREETWATCH_HOME")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    return repo_root() / "models"


def datasets_dir() -> Path:
    return repo_root() / "datasets"


def samples_dir() -> Path:
    return datasets_dir() / "samples"


def deploy_dir() -> Path:
    return repo_root() / "deploy"


def docs_dir() -> Path:
    return repo_root() / "docs"
