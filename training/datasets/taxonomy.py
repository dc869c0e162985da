"""The class taxonomy lives in :mod:`streetwatch.taxonomy` (the server reads it too, and must not
import ``training``); these names stay importable from here for the dataset tools."""

from streetwatch.taxonomy import (
    WILDCARD,
    AttributeBox,
    AttributeValue,
    DetectorClass,
    ReviewAttribute,
    Role,
    Stage,
    Taxonomy,
    ViolationDefinition,
    default_taxonomy_path,
    load_taxonomy,
    map_class,
)

__all__ = [
    "WILDCARD",
    "AttributeBox",
    "AttributeValue",
    "DetectorClass",
    "ReviewAttribute",
    "Role",
    "Stage",
    "Taxonomy",
    "ViolationDefinition",
    "default_taxonomy_path",
    "load_taxonomy",
    "map_class",
]
