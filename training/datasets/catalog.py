"""The catalog of public datasets (``datasets/catalog.yaml``) as typed objects."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streetwatch.errors import ConfigError
from streetwatch.paths import datasets_dir
from streetwatch.yaml_model import load_yaml_model
from training.datasets.importers import DatasetFormat
from training.datasets.taxonomy import Taxonomy


def default_catalog_path() -> Path:
    """``datasets/catalog.yaml`` of this checkout, or of ``$STREETWATCH_HOME``."""
    return datasets_dir() / "catalog.yaml"


class Access(str, Enum):
    open = "open"  # anyone may download it
    login = "login"  # free account needed: manual download
    restricted = "restricted"  # only some users may get it (region, agreement)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Download(_Strict):
    url: str = Field(pattern=r"^https?://", description="Direct URL of one file.")
    file: str = Field(pattern=r"^[^/\\]+$", description="File name to save it as.")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Expected SHA-256; null means not pinned yet."
    )


class CatalogEntry(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Name used on the command line.")
    title: str
    url: str = Field(description="Page where a person reads about the dataset.")
    licence: str
    format: DatasetFormat
    classes: tuple[str, ...] = Field(min_length=1, description="Our classes it provides.")
    class_mapping: str = Field(description="Key of source_mappings in classes.yaml.")
    names: tuple[str, ...] | None = Field(
        default=None, description="YOLO class names by id, if it has no data.yaml."
    )
    access: Access
    download: Download | None = None
    instructions: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _usable(self) -> CatalogEntry:
        if self.download is None and not self.instructions:
            raise ValueError(f"dataset {self.name!r} has neither a download nor instructions")
        if self.access is not Access.open and self.download is not None:
            raise ValueError(
                f"dataset {self.name!r} needs {self.access.value} access: give instructions, not a download"
            )
        return self


class Catalog(_Strict):
    version: int = Field(ge=1)
    datasets: tuple[CatalogEntry, ...]

    def get(self, name: str) -> CatalogEntry:
        for entry in self.datasets:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.datasets)
        raise ConfigError(f"no dataset {name!r} in the catalog; known: {known}")

    def check_against(self, taxonomy: Taxonomy) -> None:
        """Every class and mapping the catalog names must exist in the taxonomy."""
        known = set(taxonomy.class_names())
        for entry in self.datasets:
            taxonomy.mapping(entry.class_mapping)
            unknown = sorted(set(entry.classes) - known)
            if unknown:
                raise ConfigError(f"catalog dataset {entry.name!r} lists unknown classes {unknown}")


def load_catalog(path: Path | str | None = None) -> Catalog:
    file = Path(path) if path is not None else default_catalog_path()
    return load_yaml_model(Catalog, file, "dataset catalog")
