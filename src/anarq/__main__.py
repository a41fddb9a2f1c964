"""`python -m anarq` is the `anarq` command."""

from anarq.cli.main import main

main()
