"""``streetwatch signs import|list|remove|settle``: the signboard register from the command line.

streetwatch signs import permits.csv --photos permit-photos/ --config server.yaml
streetwatch signs list [--json]
streetwatch signs remove 42
streetwatch signs settle          # decide sightings whose crop never came (the worker does it too)
streetwatch signs zones zones.geojson [--at LAT LON]   # check a no-sign zone file before using it
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def register_signs(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    usage: Callable[[argparse.ArgumentParser], int],
    config_help: str,
) -> None:
    signs = subparsers.add_parser(
        "signs", help="The signboard register: known (permitted) signs open no case."
    )
    signs.set_defaults(handler=lambda _args: usage(signs))
    commands = signs.add_subparsers(dest="signs_command", metavar="SUBCOMMAND")

    imp = commands.add_parser(
        "import",
        help="Import a permit list (CSV or GeoJSON with positions, permit ids and optional photos); "
        "importing it again updates the entries of the same permit ids.",
    )
    imp.add_argument(
        "file",
        type=Path,
        help="permits.csv (permit_id,lat,lon,valid_until,description,photo) "
        "or a GeoJSON FeatureCollection of Points with those properties.",
    )
    imp.add_argument(
        "--photos", type=Path, help="Folder the photo names are relative to (default: the file's)."
    )
    imp.add_argument("--actor", default="import", help="Who the entries are recorded as made by.")
    imp.set_defaults(handler=_import)

    listing = commands.add_parser("list", help="Print the register entries, newest first.")
    listing.add_argument("--json", action="store_true", help="One JSON object per line.")
    listing.set_defaults(handler=_list)

    remove = commands.add_parser("remove", help="Remove a register entry by its id.")
    remove.add_argument("sign_id", type=int, help="The entry's id (streetwatch signs list).")
    remove.set_defaults(handler=_remove)

    settle = commands.add_parser(
        "settle", help="Decide signboard sightings that waited longer than signs.pending_s for their crop."
    )
    settle.set_defaults(handler=_settle)

    for command in (imp, listing, remove, settle):
        command.add_argument("--config", help=config_help)

    zones = commands.add_parser(
        "zones",
        help="Check a no-sign zone file (signs.no_sign_zones) and list its zones; --at says which zone "
        "holds a point. The server reads the file when it starts: check it first.",
    )
    zones.add_argument("file", type=Path, help="A GeoJSON FeatureCollection of Polygon / MultiPolygon zones.")
    zones.add_argument(
        "--at",
        nargs=2,
        type=float,
        action="append",
        default=[],
        metavar=("LAT", "LON"),
        help="A point to look up.",
    )
    zones.set_defaults(handler=_zones)


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[tuple[Session, Any]]:
    """A session on the configured, migrated database (committed on success), and the settings."""
    from server.cli import migrated_session, settings_from_args

    settings = settings_from_args(args)
    with migrated_session(settings.database_url) as session:
        yield session, settings


def _import(args: argparse.Namespace) -> int:
    from server.evidence_store import EvidenceStore
    from server.signs.permits import import_permits
    from server.signs.since import open_cases_near, reach_of

    with _session(args) as (session, settings):
        store = EvidenceStore(settings.evidence_dir)  # the photos, where the console shows them
        now = datetime.now(timezone.utc)
        report = import_permits(
            session, args.file, photos=args.photos, store=store, actor=args.actor, now=now
        )
        reach = reach_of(settings.signs.max_distance_m, settings.signs.max_accuracy_m)
        covered = open_cases_near(session, report.places, reach)
    for error in report.errors:
        print(f"{args.file}: {error}", file=sys.stderr)
    print(f"{args.file}: {report.added} added, {report.updated} updated, {len(report.errors)} skipped")
    if covered:
        cases = (
            "1 open signboard case stands"
            if len(covered) == 1
            else f"{len(covered)} open signboard cases stand"
        )
        print(
            f"{cases} where a permit now is, opened before it was known: "
            f"{', '.join(f'#{c}' for c in covered)}. Reject as permitted each that shows the permitted sign."
        )
    return 1 if report.errors else 0


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.db.models import Sign
    from server.signs.service import views

    with _session(args) as (session, _settings):
        for sign in session.scalars(select(Sign).order_by(Sign.id.desc())):
            row = {
                "id": sign.id,
                "lat": sign.lat,
                "lon": sign.lon,
                "permit_id": sign.permit_id,
                "valid_until": sign.valid_until.isoformat() if sign.valid_until else None,
                "source": sign.source,
                "case_id": sign.case_id,
                "views": len(views(sign)),
                "sightings": sign.sighting_count,
                "superseded_by": sign.superseded_by,
                "description": sign.description,
            }
            if args.json:
                print(json.dumps(row))
            else:
                permit = f"permit {sign.permit_id}" if sign.permit_id else "no permit id"
                print(
                    f"{sign.id}: {sign.lat:.6f},{sign.lon:.6f} {permit} ({sign.source}, "
                    f"{row['views']} views, seen {sign.sighting_count}x) {sign.description}"
                )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from server.signs.service import SignError, remove_sign
    from streetwatch.errors import ConfigError

    with _session(args) as (session, _settings):
        try:
            remove_sign(session, args.sign_id)
        except SignError as exc:
            raise ConfigError(str(exc)) from None
    print(f"register entry {args.sign_id} removed")
    return 0


def _settle(args: argparse.Namespace) -> int:
    from server.signs.settle import settle_pending

    with _session(args) as (session, settings):
        decided = settle_pending(session, settings, datetime.now(timezone.utc))
    print(f"{decided} pending sighting(s) decided")
    return 0


def _zones(args: argparse.Namespace) -> int:
    from server.signs.zones import read_zones, zone_at
    from streetwatch.geo import distance_m

    zones = read_zones(args.file)  # a ConfigError says what is wrong, and where
    for zone in zones:
        west, south, east, north = zone.bbox
        across = distance_m(south, west, south, east)
        along = distance_m(south, west, north, west)
        reason = f": {zone.reason}" if zone.reason else ""
        print(
            f"{zone.name!r}{reason} ({len(zone.polygons)} part(s), spanning {across:.0f} m east-west "
            f"and {along:.0f} m north-south)"
        )
    print(f"{args.file}: {len(zones)} no-sign zone(s)")
    for lat, lon in args.at:
        holder = zone_at(zones, lat, lon)
        print(f"{lat:.6f},{lon:.6f}: " + (f"in {holder.name!r}" if holder else "in no zone"))
    return 0
