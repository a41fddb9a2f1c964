"""Run the `anarq` command in this process, as a person would in a terminal.

The node under test runs as its own process (`NodeProcess`); the commands run here, in
Click's isolation (their own argv, environment, stdin, stdout and stderr), through the
same `main()` a terminal calls, so exit codes and one-line errors are the real ones. A
Python interpreter per command cost over half a second of start-up each; this costs a
few milliseconds. An exception `main()` does not turn into an exit code is a crash, and
is raised here, failing the test that caused it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from anarq.cli.main import main

PASSPHRASE = "correct horse battery staple"


def anarq(
    home: Path,
    *args: str,
    passphrase: str = PASSPHRASE,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`anarq ARGS…` with `home` as ANARQ_HOME (and `env`): exit code, stdout, stderr."""
    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ANARQ_")}
    environment.update({"ANARQ_HOME": str(home), "ANARQ_PASSPHRASE": passphrase, **(env or {})})
    runner = CliRunner()
    argv = sys.argv
    code: int | str | None = 0
    with runner.isolation(input=stdin, env=environment) as (out, err, _output):
        sys.argv = ["anarq", *args]
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    if isinstance(code, str):  # sys.exit("message")
        stderr, code = stderr + code, 1
    return subprocess.CompletedProcess(["anarq", *args], code or 0, stdout, stderr)
