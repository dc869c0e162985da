from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streetwatch.errors import ConfigError
from streetwatch.events import ViolationType
from training.datasets.catalog import Access, load_catalog
from training.datasets.taxonomy import Role, Stage, default_taxonomy_path, load_taxonomy, map_class

# The detector's class ids are a contract with every shipped model: this list may only grow at the end.
TRAINED_ORDER = ["garbage", "garbage_bin", "overflow", "signboard", "car", "motor", "truck", "bus"]


def test_trained_classes_keep_the_model_order(taxonomy):
    assert list(taxonomy.trained_class_names()) == TRAINED_ORDER


def test_every_violation_type_has_a_trigger_class_and_a_definition(taxonomy):
    assert set(taxonomy.violation_types) == set(ViolationType)
    for violation in ViolationType:
        roles = {c.role for c in taxonomy.classes_for(violation)}
        assert Role.trigger in roles, violation
        assert taxonomy.violation_types[violation].description.strip()


def test_context_and_proxy_classes_are_as_documented(taxonomy):
    assert taxonomy.get("garbage_bin").role is Role.context
    assert taxonomy.get("signboard").violation is ViolationType.illegal_signboard
    assert taxonomy.get("truck").violation is ViolationType.unsealed_truck
    coco = {c.name: c.coco_name for c in taxonomy.detector_classes if c.stage is Stage.coco}
    assert coco["dining_table"] == "dining table"
    assert {"person", "umbrella", "chair"} <= set(coco)


def test_coco_mapping_maps_useful_names_and_drops_the_rest(taxonomy):
    coco = taxonomy.mapping("coco")
    assert map_class(coco, "motorcycle") == (True, "motor")
    assert map_class(coco, "dining table") == (True, "dining_table")
    assert map_class(coco, "toothbrush") == (True, None)
    assert map_class(taxonomy.mapping("garbage_cn"), "rubbish") == (False, None)


def test_unknown_mapping_name_lists_known_ones(taxonomy):
    with pytest.raises(ConfigError, match="garbage_cn"):
        taxonomy.mapping("no_such_set")


def _write_variant(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(default_taxonomy_path().read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "classes.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_mapping_to_an_unknown_class_is_rejected(tmp_path):
    def change(raw):
        raw["source_mappings"]["garbage_cn"]["garbage"] = "trash"

    with pytest.raises(ConfigError, match="trash"):
        load_taxonomy(_write_variant(tmp_path, change))


def test_a_trained_class_after_a_planned_one_is_rejected(tmp_path):
    def change(raw):
        raw["detector_classes"].append({**raw["detector_classes"][0], "name": "late_class"})

    with pytest.raises(ConfigError, match="trained classes must come first"):
        load_taxonomy(_write_variant(tmp_path, change))


def test_missing_taxonomy_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.yaml"):
        load_taxonomy(tmp_path / "nothere.yaml")


def test_catalog_covers_every_class_need_and_matches_the_taxonomy(taxonomy):
    catalog = load_catalog()
    catalog.check_against(taxonomy)
    names = {e.name for e in catalog.datasets}
    expected = {"streetvendor_sli", "roboflow_street_vendors", "aihub_loaded_trucks", "roboflow_dump_trucks"}
    assert expected | {"plitter_street", "taco", "garbage_cn", "signboards_vn", "vehicles_vn"} <= names
    provided = {c for e in catalog.datasets for c in e.classes}
    assert {"vending_stall", "uncovered_truck_load", "truck", "garbage", "signboard"} <= provided
    for entry in catalog.datasets:
        if entry.access is not Access.open or entry.download is None:
            assert entry.instructions, entry.name
    assert catalog.get("aihub_loaded_trucks").access is Access.restricted


def test_streetwatch_home_moves_the_taxonomy_and_a_missing_one_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A packaged install points STREETWATCH_HOME at its data; the server reads labels from there."""
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "classes.yaml").write_text(default_taxonomy_path().read_text(encoding="utf-8"))
    monkeypatch.setenv("STREETWATCH_HOME", str(tmp_path))
    assert default_taxonomy_path() == tmp_path / "datasets" / "classes.yaml"
    assert load_taxonomy().trained_class_names() == tuple(TRAINED_ORDER)
    monkeypatch.setenv("STREETWATCH_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match=r"elsewhere/datasets/classes\.yaml"):
        load_taxonomy()


def test_review_attributes_name_known_classes_and_box_the_right_thing(taxonomy):
    (load,) = taxonomy.attributes_for(ViolationType.unsealed_truck)
    assert load.box.value == "part"
    assert {v.value: v.class_name for v in load.values} == {
        "uncovered": "uncovered_truck_load",
        "partly_covered": "uncovered_truck_load",
        "covered": "covered_truck_load",
        "empty": None,
        "closed_body": "covered_truck_load",
    }
    # An open load is the violation; a covered, empty or closed one is not.
    assert {v.value for v in load.values if v.violation} == {"uncovered", "partly_covered"}
    assert {v.value for v in load.values if v.violation is False} == {"covered", "empty", "closed_body"}
    (setup,) = taxonomy.attributes_for("street_vending")
    assert setup.box.value == "object" and setup.get("umbrella_only").class_name is None
    assert taxonomy.attributes_for(ViolationType.garbage_overflow) == ()


def test_a_review_attribute_naming_an_unknown_class_or_a_value_twice_is_rejected(tmp_path):
    def unknown(raw):
        raw["review_attributes"]["unsealed_truck"][0]["values"][0]["class_name"] = "open_truck"

    with pytest.raises(ConfigError, match="open_truck"):
        load_taxonomy(_write_variant(tmp_path, unknown))

    def twice(raw):
        values = raw["review_attributes"]["street_vending"][0]["values"]
        values.append(dict(values[0]))

    with pytest.raises(ConfigError, match="lists a value twice"):
        load_taxonomy(_write_variant(tmp_path, twice))
