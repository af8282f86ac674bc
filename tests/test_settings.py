"""Settings: defaults < TOML file < ORTSPULS_* environment < command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ortspuls.settings import Settings, SettingsError, load_settings


@pytest.fixture
def toml(tmp_path):
    def write(text: str) -> Path:
        path = tmp_path / "ortspuls.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_defaults():
    settings = load_settings(environ={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.default_top, settings.max_top) == (
        "127.0.0.1", 8000, 100, 10_000)
    assert settings.allow_anonymous_write is False
    assert settings.effective_database_url == (
        f"sqlite:///{(Path('ortspuls-data') / 'ortspuls.sqlite3').resolve()}")


def test_precedence_file_env_cli(toml):
    path = toml('[ortspuls]\nport = 8001\nhost = "0.0.0.0"\nmax_top = 500\n'
                'public_base_url = "https://datei.example"\n')
    from_file = load_settings(environ={}, config_file=path)
    assert (from_file.port, from_file.host, from_file.max_top) == (8001, "0.0.0.0", 500)

    env = {"ORTSPULS_PORT": "8002", "ORTSPULS_MAX_TOP": "600"}
    from_env = load_settings(environ=env, config_file=path)
    assert (from_env.port, from_env.host, from_env.max_top) == (8002, "0.0.0.0", 600)

    from_cli = load_settings({"port": 8003, "host": None}, environ=env, config_file=path)
    assert from_cli.port == 8003
    assert from_cli.host == "0.0.0.0"  # None means "not given on the command line"
    assert from_cli.max_top == 600
    assert from_cli.public_base_url == "https://datei.example"


def test_config_file_from_environment(toml):
    path = toml("port = 9100\n")  # keys at top level work too
    settings = load_settings(environ={"ORTSPULS_CONFIG": str(path)})
    assert settings.port == 9100


def test_types_are_converted():
    env = {"ORTSPULS_ALLOW_ANONYMOUS_WRITE": "yes", "ORTSPULS_TRUST_FORWARDED_HEADERS": "0",
           "ORTSPULS_WRITER_MAX_DELAY_MS": "0.5", "ORTSPULS_DATA_DIR": "~/ortspuls",
           "ORTSPULS_MAX_BODY_BYTES": "1024"}
    settings = load_settings(environ=env)
    assert settings.allow_anonymous_write is True
    assert settings.trust_forwarded_headers is False
    assert settings.writer_max_delay_ms == 0.5
    assert settings.data_dir == Path("~/ortspuls").expanduser()
    assert settings.max_body_bytes == 1024


def test_dashes_in_file_keys(toml):
    assert load_settings(environ={}, config_file=toml("max-top = 500\n")).max_top == 500


@pytest.mark.parametrize("env, words", [
    ({"ORTSPULS_PORT": "achtzig"}, ["port", "achtzig"]),
    ({"ORTSPULS_ALLOW_ANONYMOUS_WRITE": "vielleicht"}, ["allow_anonymous_write"]),
    ({"ORTSPULS_DEFAULT_TOP": "500", "ORTSPULS_MAX_TOP": "100"}, ["default_top"]),
    ({"ORTSPULS_WORKERS": "0"}, ["workers"]),
])
def test_bad_values_name_the_setting(env, words):
    with pytest.raises(SettingsError) as info:
        load_settings(environ=env)
    for word in words:
        assert word in str(info.value)


def test_bad_config_files(toml, tmp_path):
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_settings(environ={}, config_file=toml("colour = 'rot'\n"))
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(environ={}, config_file=toml("port = \n"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={}, config_file=tmp_path / "fehlt.toml")
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings({"colour": "rot"}, environ={})


def test_unrelated_environment_is_ignored():
    settings = load_settings(environ={"ORTSPULS_NOT_A_SETTING": "x", "PORT": "1"})
    assert settings == Settings()


def test_to_env_round_trip():
    settings = load_settings({"port": 8123, "allow_anonymous_write": True,
                              "public_base_url": "https://x.example"}, environ={})
    assert load_settings(environ=settings.to_env()) == settings


def test_database_url_wins_over_data_dir():
    settings = load_settings({"database_url": "postgresql://ortspuls@localhost/ortspuls",
                              "data_dir": "/tmp/x"}, environ={})
    assert settings.effective_database_url == "postgresql://ortspuls@localhost/ortspuls"
