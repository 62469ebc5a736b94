"""PyInstaller entry point: the same as the `logtrain` console script."""

from logtrain.cli import main

raise SystemExit(main())
