from pathlib import Path

import pytest

from anarq.kernel.errors import SettingsError
from anarq.kernel.settings import load_settings


def test_defaults_are_embedded() -> None:
    settings = load_settings()
    assert settings.backend_kind == "embedded"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_bus_url == "memory://"
    assert settings.port == 8080


def test_env_var_sets_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANARQ_PORT", "9001")
    assert load_settings().port == 9001


def test_unknown_env_var_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANARQ_DATABSE_URL", "sqlite:///x.db")
    with pytest.raises(SettingsError, match="ANARQ_DATABSE_URL"):
        load_settings()


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANARQ_PORT", "eighty")
    with pytest.raises(SettingsError, match="ANARQ_PORT"):
        load_settings()


def test_bad_url_scheme_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANARQ_BUS_URL", "kafka://broker")
    with pytest.raises(SettingsError, match="nats://"):
        load_settings()


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "anarq.toml"
    config.write_text('[anarq]\nport = 7000\nnode_name = "From file"\n')
    monkeypatch.setenv("ANARQ_CONFIG", str(config))
    monkeypatch.setenv("ANARQ_PORT", "7001")
    settings = load_settings()
    assert settings.node_name == "From file"
    assert settings.port == 7001


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "anarq.toml"
    config.write_text("[anarq]\nprot = 7000\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(config)


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "anarq.toml"
    config.write_text("[anarq\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config)


def test_redacted_hides_passwords_and_tokens() -> None:
    settings = load_settings(
        database_url="postgresql+psycopg://anarq:hunter2@db/anarq",
        blobs_url="s3://bucket?endpoint=http://s3&access_key=ak&secret_key=sk123",
        operator_token="anq_op_secret",
    )
    shown = str(settings.redacted())
    assert "hunter2" not in shown
    assert "sk123" not in shown
    assert "anq_op_secret" not in shown
    assert settings.redacted()["effective"]["backend"] == "cluster"
