"""fetch against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from streetwatch.cli import main
from streetwatch.errors import DatasetError
from training.datasets.catalog import CatalogEntry, load_catalog
from training.datasets.fetch import ManualDownloadRequired, fetch_dataset

PAYLOAD = b"street photos archive\n" * 2000


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    served = tmp_path / "served"
    served.mkdir()
    (served / "set.zip").write_bytes(PAYLOAD)
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _entry(url: str, sha256: str | None, **extra) -> CatalogEntry:
    return CatalogEntry.model_validate(
        {
            "name": "local_set",
            "title": "A local test set",
            "url": "http://127.0.0.1/about",
            "licence": "CC BY 4.0",
            "format": "yolo",
            "classes": ["garbage"],
            "class_mapping": "garbage_cn",
            "access": "open",
            "download": {"url": url, "file": "set.zip", "sha256": sha256},
            **extra,
        }
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_download_with_matching_hash(server, tmp_path):
    expected = hashlib.sha256(PAYLOAD).hexdigest()
    result = fetch_dataset(_entry(f"{server}/set.zip", expected), tmp_path / "dest")
    assert result.path.read_bytes() == PAYLOAD
    assert result.sha256 == expected and result.pinned and result.size_bytes == len(PAYLOAD)
    assert not list((tmp_path / "dest").glob("*.part"))


def test_hash_mismatch_is_an_error_and_removes_the_file(server, tmp_path):
    with pytest.raises(DatasetError, match=r"SHA-256 .* removed"):
        fetch_dataset(_entry(f"{server}/set.zip", "0" * 64), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()  # no partial file, and no empty folder made for it


def test_unpinned_download_reports_the_hash_to_pin(server, tmp_path):
    result = fetch_dataset(_entry(f"{server}/set.zip", None), tmp_path / "dest")
    assert not result.pinned and result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


def test_unreachable_host_says_offline_and_where_to_put_the_file(tmp_path):
    entry = _entry(f"http://127.0.0.1:{_free_port()}/set.zip", None)
    with pytest.raises(DatasetError, match="offline") as error:
        fetch_dataset(entry, tmp_path / "dest", timeout_s=5)
    assert str(tmp_path / "dest" / "set.zip") in str(error.value)
    assert not (tmp_path / "dest").exists()  # no partial file, and no empty folder made for it

    kept = tmp_path / "downloads"  # a folder the user made is left in place
    kept.mkdir()
    with pytest.raises(DatasetError, match="offline"):
        fetch_dataset(entry, kept, timeout_s=5)
    assert kept.is_dir() and list(kept.iterdir()) == []

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        fetch_dataset(entry, afile, timeout_s=5)


def test_missing_file_on_the_server_is_a_clear_error(server, tmp_path):
    with pytest.raises(DatasetError, match="404"):
        fetch_dataset(_entry(f"{server}/nothere.zip", None), tmp_path / "dest")


def test_login_datasets_print_instructions_instead():
    entry = load_catalog().get("roboflow_street_vendors")
    with pytest.raises(ManualDownloadRequired, match="needs an account"):
        fetch_dataset(entry, Path("/nonexistent"))


def test_cli_fetch_end_to_end(server, tmp_path, capsys):
    catalog = {
        "version": 1,
        "datasets": [
            _entry(f"{server}/set.zip", hashlib.sha256(PAYLOAD).hexdigest()).model_dump(mode="json"),
            {
                **_entry(f"{server}/set.zip", None).model_dump(mode="json"),
                "name": "restricted_set",
                "access": "restricted",
                "download": None,
                "instructions": "Ask the data owner for access.",
            },
        ],
    }
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(catalog))
    dest = tmp_path / "dest"
    assert main(["dataset", "fetch", "local_set", "--catalog", str(catalog_file), "--dest", str(dest)]) == 0
    assert "SHA-256 matches" in capsys.readouterr().out
    assert (dest / "set.zip").read_bytes() == PAYLOAD
    assert (
        main(["dataset", "fetch", "restricted_set", "--catalog", str(catalog_file), "--dest", str(dest)]) == 3
    )
    assert "Ask the data owner" in capsys.readouterr().out
    assert main(["dataset", "fetch", "no_such_set", "--catalog", str(catalog_file)]) == 1
    assert "known: local_set, restricted_set" in capsys.readouterr().err
