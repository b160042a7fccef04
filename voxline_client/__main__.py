"""`python -m voxline_client say "Hello" -o hello.wav`: the same as the `voxline` command."""

from voxline_client.cli import main

raise SystemExit(main())
