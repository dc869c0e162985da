"""The class taxonomy (``datasets/classes.yaml``) as typed objects.

Importers use it to turn a dataset's class names into ours, the dataset builder takes the YOLO
class order from it, and an edge config author can ask which detector classes feed a violation::

    taxonomy = load_taxonomy()
    taxonomy.trained_class_names()            # ('garbage', 'garbage_bin', 'overflow', ...)
    taxonomy.classes_for(ViolationType.garbage_overflow)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streetwatch.errors import ConfigError
from streetwatch.events import ViolationType
from streetwatch.paths import datasets_dir
from streetwatch.yaml_model import load_yaml_model


def default_taxonomy_path() -> Path:
    """``datasets/classes.yaml`` of this checkout, or of ``$STREETWATCH_HOME`` (``streetwatch.paths``)."""
    return datasets_dir() / "classes.yaml"


#: Key of a source mapping that matches every class name the mapping does not list.
WILDCARD = "*"


class Stage(str, Enum):
    """Where detections of a class come from today."""

    trained = "trained"  # the StreetWatch detector learns it
    coco = "coco"  # a COCO-pretrained detector provides it under ``coco_name``
    planned = "planned"  # defined for labelers and imports; no model yet


class Role(str, Enum):
    """What a detection of the class does in the rules."""

    trigger = "trigger"
    proxy = "proxy"
    context = "context"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ViolationDefinition(_Strict):
    description: str = Field(min_length=1, description="What counts as this violation on the street.")


class DetectorClass(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Class name used in labels and models.")
    stage: Stage = Field(description="trained, coco or planned.")
    role: Role = Field(description="trigger, proxy or context.")
    violation: ViolationType | None = Field(default=None, description="The violation this class feeds.")
    coco_name: str | None = Field(default=None, description="COCO class name, for stage 'coco'.")
    definition: str = Field(min_length=1, description="What a labeler boxes as this class.")

    @model_validator(mode="after")
    def _consistent(self) -> DetectorClass:
        if self.role in (Role.trigger, Role.proxy) and self.violation is None:
            raise ValueError(f"class {self.name!r} is a {self.role.value} but names no violation")
        if self.stage is Stage.coco and not self.coco_name:
            raise ValueError(f"class {self.name!r} has stage 'coco' but no coco_name")
        return self


class AttributeBox(str, Enum):
    """What the class of a review attribute's value boxes."""

    object = "object"  # the reviewed object itself
    part = "part"  # a part of it (e.g. a truck's cargo bed), drawn as the attribute's own box


class AttributeValue(_Strict):
    value: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The value as stored and sent.")
    class_name: str | None = Field(description="Detector class it is labelled as; null: no box.")
    description: str = Field(min_length=1, description="When a reviewer picks it.")
    violation: bool | None = Field(
        default=None,
        description="true: a case with this value is a violation, false: it is not; null: either. The "
        "console asks an attribute whose values say so as the reviewer decides (the violations' values "
        "on confirm, the others on a not_a_violation rejection), so every decision is also a label.",
    )


class ReviewAttribute(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Attribute name, e.g. load.")
    description: str = Field(min_length=1, description="What the attribute records.")
    box: AttributeBox = Field(description="object or part: what its classes box.")
    box_hint: str = Field(min_length=1, description="What to draw, for the reviewer.")
    values: tuple[AttributeValue, ...] = Field(min_length=1, description="The allowed values.")

    def get(self, value: str) -> AttributeValue | None:
        return next((v for v in self.values if v.value == value), None)


class Taxonomy(_Strict):
    version: int = Field(ge=1, description="Format version of classes.yaml.")
    violation_types: dict[ViolationType, ViolationDefinition] = Field(
        description="Every violation type with its definition."
    )
    detector_classes: tuple[DetectorClass, ...] = Field(min_length=1, description="In model order.")
    source_mappings: dict[str, dict[str, str | None]] = Field(
        default_factory=dict, description="Dataset name -> {their class name: our class name or null}."
    )
    review_attributes: dict[ViolationType, tuple[ReviewAttribute, ...]] = Field(
        default_factory=dict, description="What reviewers record per violation type (truck load, ...)."
    )

    @model_validator(mode="after")
    def _check_references(self) -> Taxonomy:
        missing = set(ViolationType) - set(self.violation_types)
        if missing:
            raise ValueError(f"violation_types lacks {sorted(v.value for v in missing)}")
        names = [c.name for c in self.detector_classes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"detector class names appear twice: {duplicates}")
        stages = [c.stage for c in self.detector_classes]
        first_other = next((i for i, s in enumerate(stages) if s is not Stage.trained), len(stages))
        if Stage.trained in stages[first_other:]:
            raise ValueError("trained classes must come first (they are the model's class ids 0..N-1)")
        known = set(names)
        for mapping_name, mapping in self.source_mappings.items():
            unknown = sorted({t for t in mapping.values() if t is not None and t not in known})
            if unknown:
                raise ValueError(f"source mapping {mapping_name!r} maps to unknown classes {unknown}")
        for violation, attributes in self.review_attributes.items():
            names = [a.name for a in attributes]
            if len(set(names)) != len(names):
                raise ValueError(f"review_attributes of {violation.value} name an attribute twice")
            for attribute in attributes:
                values = [v.value for v in attribute.values]
                if len(set(values)) != len(values):
                    raise ValueError(f"review attribute {attribute.name!r} lists a value twice")
                unknown = sorted({v.class_name for v in attribute.values if v.class_name} - known)
                if unknown:
                    raise ValueError(f"review attribute {attribute.name!r} names unknown classes {unknown}")
        return self

    def class_names(self) -> tuple[str, ...]:
        """Every detector class name, in model order."""
        return tuple(c.name for c in self.detector_classes)

    def trained_class_names(self) -> tuple[str, ...]:
        """The StreetWatch detector's classes: index = class id in data.yaml and in the ONNX model."""
        return tuple(c.name for c in self.detector_classes if c.stage is Stage.trained)

    def get(self, name: str) -> DetectorClass:
        for detector_class in self.detector_classes:
            if detector_class.name == name:
                return detector_class
        raise ConfigError(
            f"no detector class {name!r} in the taxonomy; known: {', '.join(self.class_names())}"
        )

    def classes_for(self, violation: ViolationType) -> tuple[DetectorClass, ...]:
        """Detector classes (any stage and role) that feed ``violation``."""
        return tuple(c for c in self.detector_classes if c.violation is violation)

    def attributes_for(self, violation: ViolationType | str) -> tuple[ReviewAttribute, ...]:
        """The review attributes a case of ``violation`` may carry (none for most types)."""
        return self.review_attributes.get(ViolationType(violation), ())

    def mapping(self, name: str) -> dict[str, str | None]:
        """A named source mapping; :class:`ConfigError` lists the known names when it is absent."""
        try:
            return dict(self.source_mappings[name])
        except KeyError:
            known = ", ".join(sorted(self.source_mappings)) or "none"
            raise ConfigError(f"no source mapping {name!r} in the taxonomy; known: {known}") from None

    def identity_mapping(self) -> dict[str, str | None]:
        """Map every class name of ours to itself (for data already in our taxonomy)."""
        return {name: name for name in self.class_names()}


def map_class(mapping: Mapping[str, str | None], source_name: str) -> tuple[bool, str | None]:
    """Look ``source_name`` up: ``(known, our_name)``; ``our_name`` None means dropped on purpose."""
    if source_name in mapping:
        return True, mapping[source_name]
    if WILDCARD in mapping:
        return True, mapping[WILDCARD]
    return False, None


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Read and validate ``classes.yaml`` (default: the repository's ``datasets/classes.yaml``)."""
    file = Path(path) if path is not None else default_taxonomy_path()
    return load_yaml_model(Taxonomy, file, "taxonomy file", "; pass the path of classes.yaml")
