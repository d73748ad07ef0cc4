"""``python -m lib.sweep`` (`make all`)."""

from lib.sweep.cli import main

raise SystemExit(main())
