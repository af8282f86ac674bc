"""The `ortspuls` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

import pytest
from tests.conftest import run_cli


@pytest.fixture
def data_args(tmp_path) -> list[str]:
    return ["--data-dir", str(tmp_path / "daten")]


def database_bytes(tmp_path: Path) -> bytes:
    """Everything SQLite wrote: the database file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in (tmp_path / "daten").glob("ortspuls.sqlite3*"))


def test_apikey_create_prints_key_alone_on_last_line(tmp_path, data_args):
    result = run_cli("apikey", "create", "--name", "logger", "--scope", "write", *data_args)
    lines = result.stdout.strip().splitlines()
    key = lines[-1]
    assert re.fullmatch(r"ops_[A-Za-z0-9_-]{40,}", key), key
    assert len(lines) >= 2 and "logger" in lines[0]  # the explanation comes before the key
    # Only a hash is stored, never the key.
    stored = database_bytes(tmp_path)
    assert key.encode() not in stored
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored
    assert key not in result.stderr


def test_each_key_is_new(data_args):
    first = run_cli("apikey", "create", "--name", "a", *data_args).stdout.splitlines()[-1]
    second = run_cli("apikey", "create", "--name", "b", *data_args).stdout.splitlines()[-1]
    assert first != second


def test_apikey_list_never_shows_keys(data_args):
    keys = {name: run_cli("apikey", "create", "--name", name, "--scope", scope,
                          *data_args).stdout.splitlines()[-1]
            for name, scope in (("leser", "read"), ("admin", "admin"))}
    listing = run_cli("apikey", "list", *data_args)
    for name, key in keys.items():
        assert name in listing.stdout
        assert key not in listing.stdout and key not in listing.stderr
        # Not even beyond the short prefix that helps to tell keys apart.
        assert key[:20] not in listing.stdout
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.stdout.splitlines()}
    assert rows["leser"][1] == "read" and rows["admin"][1] == "admin"
    assert rows["leser"][3] == "active"


def test_apikey_list_when_empty(data_args):
    assert "no API keys" in run_cli("apikey", "list", *data_args).stdout


def test_apikey_revoke(data_args):
    run_cli("apikey", "create", "--name", "alt", *data_args)
    result = run_cli("apikey", "revoke", "alt", *data_args)
    assert "revoked" in result.stdout
    listing = run_cli("apikey", "list", *data_args).stdout
    assert re.search(r"^alt\t\w+\t\S+\trevoked", listing, re.MULTILINE)
    missing = run_cli("apikey", "revoke", "gibt-es-nicht", *data_args, check=False)
    assert missing.returncode == 2
    assert "gibt-es-nicht" in missing.stderr and "Traceback" not in missing.stderr


def test_apikey_duplicate_name_is_refused(data_args):
    run_cli("apikey", "create", "--name", "doppelt", *data_args)
    again = run_cli("apikey", "create", "--name", "doppelt", *data_args, check=False)
    assert again.returncode == 2
    assert "doppelt" in again.stderr and "Traceback" not in again.stderr
    assert again.stdout.strip() == ""  # no key printed


def test_apikey_unknown_scope_is_refused(data_args):
    result = run_cli("apikey", "create", "--name", "x", "--scope", "superuser", *data_args,
                     check=False)
    assert result.returncode == 2
    assert "superuser" in result.stderr and "Traceback" not in result.stderr


def test_serve_on_busy_port_is_one_clear_line(data_args):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), *data_args, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(port) in lines[0] and "in use" in lines[0] and "--port" in lines[0]


def test_bad_database_url_is_a_clear_error(tmp_path):
    result = run_cli("apikey", "list", "--database-url", "mysql://x@y/z", check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "mysql" in result.stderr


def test_bad_setting_value_is_a_clear_error(data_args):
    result = run_cli("apikey", "list", *data_args, env={"ORTSPULS_MAX_TOP": "viele"},
                     check=False)
    assert result.returncode == 2
    assert "max_top" in result.stderr and "Traceback" not in result.stderr


def test_config_file_is_used(tmp_path):
    config = tmp_path / "ortspuls.toml"
    config.write_text(f'[ortspuls]\ndata_dir = "{tmp_path / "aus-datei"}"\n')
    run_cli("apikey", "create", "--name", "x", "--config", str(config))
    assert (tmp_path / "aus-datei" / "ortspuls.sqlite3").exists()
    missing = run_cli("apikey", "list", "--config", str(tmp_path / "fehlt.toml"), check=False)
    assert missing.returncode == 2 and "fehlt.toml" in missing.stderr


def test_version():
    result = run_cli("--version")
    assert result.stdout.startswith("ortspuls ")
