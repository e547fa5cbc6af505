"""``python -m bench [--only NAME ...]``: run the benchmarks and write the results."""

from bench.runner import main

raise SystemExit(main())
