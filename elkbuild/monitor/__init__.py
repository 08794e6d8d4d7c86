"""Run and monitor: mode-switch monitoring (sources -> parsers -> tracker -> presenter)
and `invoke debug` (Sushi under gdb, the backtrace of the first mode switch)."""
