"""Benchmarks of the Pixxel provider against the local simulator: ``python -m benchmarks.run_all``.

Each ``bench_*`` module is a script that prints its figures and ends with one ``RESULT {json}`` line;
:mod:`benchmarks.run_all` runs them one after the other and prints one table. See BENCHMARKS.md.
"""
