"""``python -m kgllm`` is the ``kgllm`` command."""

from .cli import main

raise SystemExit(main())
