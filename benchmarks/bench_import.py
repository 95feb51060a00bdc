"""Benchmark 4: parse-time cost.

What the provider adds to DAG parsing, measured in fresh interpreters (a DAG file processor parses
in a fresh process with Airflow already imported): the import time of each provider module over
``import airflow.sdk`` alone, the same for the HTTP provider's ``HttpOperator`` as a reference, and
the time to parse each file in ``example_dags/`` (whatever is there when it runs).

    python -m benchmarks.bench_import [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path

from benchmarks._common import (
    REPO_ROOT,
    Row,
    emit,
    http_provider_installed,
    median,
    python_worker,
    run_worker,
    worker_result,
)

PACKAGE = "airflow_provider_pixxel"
HTTP_OPERATOR_MODULE = "airflow.providers.http.operators.http"
OPERATOR_TARGET_MS = 50.0
EXAMPLE_DAGS = REPO_ROOT / "example_dags"


def provider_modules() -> list[str]:
    """Every module a DAG file could import: all of the package but the simulator (a test tool)."""
    root = REPO_ROOT / PACKAGE
    names = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).with_suffix("")
        parts = list(relative.parts)
        if "simulator" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def dag_files() -> list[Path]:
    return sorted(path for path in EXAMPLE_DAGS.glob("*.py") if not path.name.startswith("_"))


def _work_import(module: str) -> None:
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401

    sdk_done = time.perf_counter()
    importlib.import_module(module)
    worker_result({"sdk_seconds": sdk_done - started, "added_seconds": time.perf_counter() - sdk_done})


def _work_dags(files: list[str]) -> None:
    import airflow.sdk

    # The DAG processor puts the DAGs folder on sys.path, so DAG files can import their neighbours.
    for folder in dict.fromkeys(str(Path(file).resolve().parent) for file in files):
        sys.path.insert(0, folder)

    seconds, dags, errors = {}, 0, {}
    for file in files:
        started = time.perf_counter()
        try:
            spec = importlib.util.spec_from_file_location(f"bench_dag_{Path(file).stem}", file)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        except Exception as error:  # a DAG file still being written: report it, parse the rest
            errors[file] = f"{type(error).__name__}: {error}"[:200]
            continue
        seconds[file] = time.perf_counter() - started
        dags += sum(isinstance(value, airflow.sdk.DAG) for value in vars(module).values())
    worker_result({"seconds": seconds, "dags": dags, "errors": errors})


def measure(runs: int, only_modules: list[str] | None) -> None:
    added: dict[str, list[float]] = {}
    sdk: list[float] = []
    modules = [m for m in provider_modules() if not only_modules or m in only_modules]
    http_installed = http_provider_installed()
    if http_installed:
        modules.append(HTTP_OPERATOR_MODULE)
    for _ in range(runs):
        for module in modules:
            result = run_worker(python_worker("bench_import", "--worker-import", module)).result
            added.setdefault(module, []).append(result["added_seconds"])
            sdk.append(result["sdk_seconds"])
    medians_ms = {module: median(values) * 1000 for module, values in added.items()}
    http_ms = medians_ms.pop(HTTP_OPERATOR_MODULE, float("nan"))
    operators = {m: ms for m, ms in medians_ms.items() if ".operators." in m or ".sensors." in m}
    worst_module, worst_ms = max(operators.items(), key=lambda item: item[1]) if operators else ("-", 0.0)
    rows = [
        Row("import", f"import airflow.sdk alone (median of {len(sdk)})", f"{median(sdk) * 1000:.0f} ms"),
        Row(
            "import",
            f"slowest operator/sensor module over airflow.sdk ({worst_module.removeprefix(PACKAGE + '.')})",
            f"{worst_ms:.0f} ms",
            f"< {OPERATOR_TARGET_MS:.0f} ms",
            worst_ms < OPERATOR_TARGET_MS,
        ),
        Row(
            "import",
            "HttpOperator (HTTP provider) over airflow.sdk",
            f"{http_ms:.0f} ms" if http_installed else "apache-airflow-providers-http not installed",
        ),
    ]
    print("  import time added over airflow.sdk, median ms:")
    for module, ms in sorted(medians_ms.items(), key=lambda item: -item[1]):
        print(f"    {ms:7.1f}  {module}")
    files = [str(path) for path in dag_files()]
    dag_seconds: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    dags = 0
    if files:
        for _ in range(runs):
            for file in files:
                result = run_worker(python_worker("bench_import", "--worker-dags", file)).result
                dag_seconds.setdefault(file, []).extend(result["seconds"].values())
                errors.update(result["errors"])
            together = run_worker(python_worker("bench_import", "--worker-dags", *files)).result
            dag_seconds.setdefault("__all__", []).append(sum(together["seconds"].values()))
            dags = together["dags"]
        all_ms = median(dag_seconds.pop("__all__")) * 1000
        per_file = {Path(f).name: median(v) * 1000 for f, v in dag_seconds.items() if v}
        print("  example DAG parse time in a fresh process over airflow.sdk, median ms:")
        for name, ms in sorted(per_file.items(), key=lambda item: -item[1]):
            print(f"    {ms:7.1f}  {name}")
        slowest = max(per_file.items(), key=lambda item: item[1]) if per_file else ("-", float("nan"))
        rows += [
            Row(
                "import",
                f"parse all {len(files)} example DAG files in one process ({dags} DAGs)",
                f"{all_ms:.0f} ms",
            ),
            Row(
                "import",
                f"slowest example DAG file alone, fresh process ({slowest[0]})",
                f"{slowest[1]:.0f} ms",
            ),
        ]
        for file, message in errors.items():
            print(f"  could not parse {Path(file).name}: {message}")
        if errors:
            rows.append(Row("import", "example DAG files that failed to parse", str(len(errors))))
    else:
        rows.append(Row("import", "example DAG files", "none found in example_dags/"))
    emit(rows, import_ms=medians_ms, http_operator_ms=http_ms, sdk_ms=median(sdk) * 1000, dag_errors=errors)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-import", help=argparse.SUPPRESS)
    parser.add_argument("--worker-dags", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per module and DAG file")
    parser.add_argument("--modules", nargs="+", help="measure only these provider modules (dotted names)")
    args = parser.parse_args()
    if args.worker_import:
        _work_import(args.worker_import)
    elif args.worker_dags:
        _work_dags(args.worker_dags)
    else:
        measure(args.runs, args.modules)


if __name__ == "__main__":
    main()
