"""Benchmarks of nexus_async against the reference SDK and the physical limit (issue #7).

Run them all with `.venv/bin/python -m benchmarks [--quick]`, or one comparison with
`.venv/bin/python -m benchmarks.bench_<name> [--quick]`. Shared set-up lives in
`_common.py`.
"""
