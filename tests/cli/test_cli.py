"""The `anarq` command as a person meets it: help everywhere, one-line errors, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anarq import __version__
from anarq.cli.main import app

runner = CliRunner()
ANARQ = [sys.executable, "-m", "anarq"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANARQ_")}
    full_env.update(env or {})
    return subprocess.run(
        [*ANARQ, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


def all_commands(group=app, prefix=()):  # type: ignore[no-untyped-def]
    import typer.main

    click_group = typer.main.get_command(group)

    def walk(command, path):  # type: ignore[no-untyped-def]
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(click_group, prefix)


@pytest.mark.parametrize("path", list(all_commands()), ids=lambda p: " ".join(p) or "anarq")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version_prints_plain_and_json() -> None:
    assert __version__ in runner.invoke(app, ["version"]).output
    assert json.loads(runner.invoke(app, ["version", "--json"]).output) == {"version": __version__}


def test_config_show_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANARQ_DATABASE_URL", "postgresql+psycopg://u:topsecret@db/anarq")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert "topsecret" not in result.output
    assert shown["effective"]["backend"] == "cluster"


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    env = {"ANARQ_DATA_DIR": str(tmp_path)}
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run("db", "current", "--json", env=env)
    assert json.loads(current.stdout)["up_to_date"] is True


def test_unknown_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run("up", env={"ANARQ_DATA_DIR": str(tmp_path), "ANARQ_PROT": "1"})
    assert result.returncode == 2
    assert "unknown setting ANARQ_PROT" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_setting_value_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run("up", env={"ANARQ_DATA_DIR": str(tmp_path), "ANARQ_PORT": "http"})
    assert result.returncode == 2
    assert "ANARQ_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    result = run(
        "up",
        env={
            "ANARQ_DATA_DIR": str(tmp_path),
            "ANARQ_DATABASE_URL": "postgresql+psycopg://a@127.0.0.1:9/none",
            "ANARQ_SECRET_KEY": "a-long-enough-node-secret",
        },
    )
    assert result.returncode == 1
    assert "database unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_bus_exits_1_with_one_line(tmp_path: Path) -> None:
    result = run("up", env={"ANARQ_DATA_DIR": str(tmp_path), "ANARQ_BUS_URL": "nats://127.0.0.1:9"})
    assert result.returncode == 1
    assert "event bus unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_without_a_node_says_how_to_start_one() -> None:
    result = run("status", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "anarq up" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_commands_work_locally(tmp_path: Path) -> None:
    env = {"ANARQ_DATA_DIR": str(tmp_path)}
    created = run("node", "token", "create", "--label", "ci", "--json", env=env)
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    listed = json.loads(run("node", "token", "ls", "--json", env=env).stdout)
    assert [row["id"] for row in listed] == [issued["id"]]
    assert issued["token"] not in json.dumps(listed)
    revoked = run("node", "token", "revoke", issued["id"], env=env)
    assert revoked.returncode == 0, revoked.stderr
    again = run("node", "token", "revoke", issued["id"], env=env)
    assert again.returncode == 1
    assert "no active operator token" in again.stderr


def test_shared_database_without_node_secret_exits_2(tmp_path: Path) -> None:
    result = run(
        "up",
        env={
            "ANARQ_DATA_DIR": str(tmp_path),
            "ANARQ_DATABASE_URL": "postgresql+psycopg://a@127.0.0.1:9/none",
        },
    )
    assert result.returncode == 2
    assert "ANARQ_SECRET_KEY is required" in result.stderr
    assert "Traceback" not in result.stderr
