"""Checks of a device config beyond its schema: files exist, models load, the class map fits the models.

Used by ``streetwatch edge check-config``; each problem is one line naming the
field and what to do, so a technician can fix a box's config from the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.config import DeviceConfig, JsonlSinkConfig, MqttSinkConfig
from edge.interfaces import ModelInfo
from streetwatch.errors import StreetWatchError


@dataclass
class ConfigReport:
    problems: list[str] = field(default_factory=list)
    models: dict[int, ModelInfo] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_device_config(config: DeviceConfig, load_models: bool = True) -> ConfigReport:
    """Everything a run would trip over at start; models are opened when ``load_models``."""
    report = ConfigReport()
    _check_paths(config, report)
    for index, detector in enumerate(config.detectors):
        model = Path(detector.model)
        if not model.is_file():
            report.problems.append(
                f"detectors[{index}].model: {model} does not exist (put the ONNX file there or fix the path)"
            )
        elif load_models:
            try:
                from edge.detector import load_detector

                report.models[index] = load_detector(detector, index=index).info
            except StreetWatchError as exc:
                report.problems.append(f"detectors[{index}].model: {exc}")
    _check_truck_load(config, report, load_models)
    _check_updates(config, report)
    _check_refusal_report(config, report)
    _check_class_map(config, report)
    _check_fusion(config, report)
    _check_requires(config, report)
    return report


def _check_refusal_report(config: DeviceConfig, report: ConfigReport) -> None:
    """A refusal report needs a server URL and the box's HTTP token."""
    if not isinstance(config.sink, MqttSinkConfig) or config.sink.refusal_report is None:
        return
    from edge.http_token import read_token

    wanted = config.sink.refusal_report
    if not wanted.url.startswith(("http://", "https://")):
        report.problems.append(f"sink.refusal_report.url: {wanted.url!r} is not an http(s) URL")
    try:
        read_token(wanted.token_file)
    except StreetWatchError as exc:
        report.problems.append(f"sink.refusal_report.token_file: {exc}")


def _check_updates(config: DeviceConfig, report: ConfigReport) -> None:
    """Updates need the mqtt sink (commands and replies), a readable release key and token."""
    if config.updates is None:
        return
    from edge.http_token import read_token
    from edge.updates.artifact import load_release_key

    if not isinstance(config.sink, MqttSinkConfig):
        report.problems.append("updates: over-the-air updates need sink.kind 'mqtt' (commands and replies)")
    try:
        load_release_key(config.updates.release_public_key)
    except StreetWatchError as exc:
        report.problems.append(f"updates.release_public_key: {exc}")
    try:
        read_token(config.updates.http_token_file)
    except StreetWatchError as exc:
        report.problems.append(f"updates.http_token_file: {exc}")
    # An update names the model it replaces: two detectors running the same one are ambiguous.
    slots: dict[str, list[int]] = {}
    for index, info in sorted(report.models.items()):
        slots.setdefault(info.name, []).append(index)
    for name, indices in slots.items():
        if len(indices) > 1:
            where = " and ".join(f"detectors[{i}]" for i in indices)
            report.problems.append(
                f"{where} both run {name!r}: an over-the-air update names the model it replaces and could "
                "not tell them apart (give each its own 'name')"
            )


def _check_truck_load(config: DeviceConfig, report: ConfigReport, load_models: bool) -> None:
    """The load classifier exists, loads, and describes itself as one (names, input size, margin)."""
    cfg = config.truck_load
    if cfg is None:
        return
    model = Path(cfg.model)
    if not model.is_file():
        report.problems.append(
            f"truck_load.model: {model} does not exist (models/truck-load/truck-load.onnx?)"
        )
    elif load_models:
        try:
            from edge.truck_load import LoadClassifier

            LoadClassifier(model, cfg.providers)
        except StreetWatchError as exc:
            report.problems.append(f"truck_load.model: {exc}")
    if not any(m.violation_type is cfg.violation_type for m in config.class_map):
        report.problems.append(
            f"truck_load.violation_type: no class_map entry raises {cfg.violation_type.value}, "
            "so the load classifier would never run"
        )


def _check_fusion(config: DeviceConfig, report: ConfigReport) -> None:
    """Every fused class is known to some member; a member that drops a class cannot vote for it."""
    fusion = config.fusion
    if fusion is None:
        return
    members = [report.models[j] for j in fusion.detectors if j in report.models]
    for fused, names in fusion.classes.items():
        if len(members) == len(fusion.detectors) and not any(
            n in m.class_names for n in names for m in members
        ):
            report.problems.append(
                f"fusion.classes.{fused}: none of {names} is a class of detector(s) {fusion.detectors}"
            )
        if not any(_keeps(config.detectors[j].keep_classes, n) for n in names for j in fusion.detectors):
            report.problems.append(
                f"fusion.classes.{fused}: the keep_classes of detector(s) {fusion.detectors} "
                f"leave out {names}"
            )


def _check_requires(config: DeviceConfig, report: ConfigReport) -> None:
    """A required companion class no detector keeps would silence the rule for good."""
    for vtype, rule in config.rules.items():
        for i, need in enumerate(rule.requires):
            if not any(_keeps(d.keep_classes, n) for n in need.classes for d in config.detectors):
                report.problems.append(
                    f"rules.{vtype.value}.requires[{i}]: no detector keeps any of {need.classes}, "
                    "so this violation can never be reported (add them to keep_classes)"
                )


def _check_paths(config: DeviceConfig, report: ConfigReport) -> None:
    source = config.source
    if source.kind == "images" and not Path(source.uri).is_dir():
        report.problems.append(f"source.uri: image folder {source.uri} does not exist")
    if source.kind == "video" and not Path(source.uri).is_file():
        report.problems.append(f"source.uri: video file {source.uri} does not exist")
    location = config.location
    if location.kind in ("gpx", "nmea_file") and location.path and not Path(location.path).is_file():
        report.problems.append(f"location.path: {location.kind} file {location.path} does not exist")
    # MQTT credentials and certificates: a box that cannot read them never connects.
    sink = config.sink
    if not isinstance(sink, MqttSinkConfig):
        return
    tls = sink.tls
    files = {
        "sink.password_file": sink.password_file,
        "sink.tls.ca_file": tls.ca_file if tls else None,
        "sink.tls.certfile": tls.certfile if tls else None,
        "sink.tls.keyfile": tls.keyfile if tls else None,
    }
    for where, value in files.items():
        if value is not None and not Path(value).is_file():
            report.problems.append(f"{where}: {value} does not exist")


def _check_class_map(config: DeviceConfig, report: ConfigReport) -> None:
    for i, mapping in enumerate(config.class_map):
        if mapping.detector is not None and mapping.detector >= len(config.detectors):
            report.problems.append(
                f"class_map[{i}].detector: {mapping.detector} but only {len(config.detectors)} detector(s)"
            )
            continue
        indexes = [mapping.detector] if mapping.detector is not None else list(range(len(config.detectors)))
        known = [report.models[j] for j in indexes if j in report.models]
        if len(known) == len(indexes) and not any(mapping.detector_class in m.class_names for m in known):
            names = ", ".join(sorted({n for m in known for n in m.class_names})[:30])
            report.problems.append(
                f"class_map[{i}].detector_class: {mapping.detector_class!r} is not a class of "
                f"{' or '.join(m.name for m in known)} (classes: {names})"
            )
            continue
        if not any(_keeps(config.detectors[j].keep_classes, mapping.detector_class) for j in indexes):
            report.problems.append(
                f"class_map[{i}]: {mapping.detector_class!r} can never fire: the keep_classes of "
                f"detector {' / '.join(str(j) for j in indexes)} leave it out"
            )


def _keeps(keep_classes: list[str] | None, name: str) -> bool:
    return keep_classes is None or name in keep_classes


def describe(config: DeviceConfig, report: ConfigReport) -> list[str]:
    """A short human summary of what the box will do."""
    src = config.source
    lines = [f"device   {config.device_id} / camera {config.camera_id}", f"source   {src.kind} {src.uri}"]
    if src.kind == "images":
        start = src.start_time.isoformat() if src.start_time else "the wall clock at start"
        lines[-1] += f" ({src.image_interval_s:g} s per image from {start}{', looping' if src.loop else ''})"
    loc = config.location
    where = {"fixed": f"{loc.lat}, {loc.lon}", "none": "no positions"}.get(loc.kind, str(loc.path))
    lines.append(f"location {loc.kind} {where}")
    if config.camera is not None:
        cam = config.camera
        use = "objects placed on their side of the route"
        use = "unused: a fixed camera places nothing" if loc.kind == "fixed" else use
        lines.append(f"camera   looks {cam.facing}, field of view {cam.hfov_deg:g}°: {use}")
    for i, det in enumerate(config.detectors):
        info = report.models.get(i)
        what = (
            f"{info.name} {info.version}, {len(info.class_names)} classes, input {info.input_size[1]}x"
            f"{info.input_size[0]}"
            if info
            else "not loaded"
        )
        tiles = det.tiles
        tiled = ""
        if tiles is not None:
            runs = tiles.rows * tiles.cols + int(tiles.full_frame)
            whole = " + full frame" if tiles.full_frame else ""
            whole += f" ({', '.join(tiles.classes)} from tiles)" if tiles.classes else ""
            tiled = f"; tiled {tiles.rows}x{tiles.cols}, overlap {tiles.overlap:g}{whole}: {runs} runs/frame"
        if det.flip is not None:
            which = ", ".join(det.flip.classes) if det.flip.classes else "every class"
            runs = 2 * (tiles.rows * tiles.cols + int(tiles.full_frame) if tiles is not None else 1)
            tiled += f"; mirrored too, {which} merged by {det.flip.merge} score: {runs} runs/frame"
        lines.append(f"detector {i}: {det.model} ({what}; conf {det.conf:g}{tiled})")
    if config.fusion is not None:
        f = config.fusion
        voters = ", ".join(f"{k}{' (votes only)' if k in f.context else ''}" for k in f.classes)
        lines.append(
            f"fusion   detectors {'+'.join(map(str, f.detectors))}: {voters}; {f.score} score >= {f.conf:g}, "
            f"reported as detector {f.report_as}"
        )
    for m in config.class_map:
        only = f" from detector {m.detector}" if m.detector is not None else ""
        flag = " (candidate)" if m.candidate else ""
        lines.append(f"class    {m.detector_class}{only} -> {m.violation_type.value}{flag}")
    if config.truck_load is not None:
        t = config.truck_load
        far = f"; a truck under {t.min_side_px} px on its shorter side waits for a nearer view "
        far += "(none: nothing sent)"
        lines.append(
            f"load     {t.model} on each confirmed {t.violation_type.value}: an open load raises it, "
            f"an answer under {t.min_score:g} stays a candidate, any other answer sends nothing"
            + (far if t.min_side_px else "")
        )
    for vtype in sorted({m.violation_type for m in config.class_map}, key=lambda v: v.value):
        r = config.rule_for(vtype)
        state = "" if r.enabled else " DISABLED"
        lines.append(
            f"rule     {vtype.value}{state}: score >= {r.min_score:g}, area >= {r.min_box_area_px:g} px², "
            f"{r.confirm_frames} of {r.confirm_window} frames, dwell {r.dwell_s:g} s, update every "
            f"{r.update_interval_s:g} s, end after {r.end_after_s:g} s, cool-down {r.cooldown_s:g} s, "
            f"{len(r.zones)} zone(s)"
            + (f", holds 'new' up to {r.await_place_s:g} s for the object's place" if r.await_place_s else "")
            + "".join(
                f", needs {' / '.join(n.classes[:3])}{' ...' if len(n.classes) > 3 else ''} near"
                for n in r.requires
            )
        )
    ev = config.evidence
    lines.append(f"evidence {ev.directory} (at most {ev.max_total_mb:g} MB)")
    sink = config.sink
    if isinstance(sink, JsonlSinkConfig):
        target = sink.path
    else:
        target = f"{sink.host}{f':{sink.port}' if sink.port else ''}"
    lines.append(f"sink     {sink.kind} {target}")
    return lines
