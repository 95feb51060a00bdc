"""Benchmark 4: parse-time cost.

What the provider adds to DAG parsing, measured in fresh interpreters (a DAG file processor parses
in a fresh process with Airflow already imported). A DAG file that uses any operator has already run
``from airflow.sdk import DAG, BaseOperator, task``: that is the baseline each provider module is
measured over (one fresh interpreter per measurement, modules alternating, median of the runs). The
same module is also measured over ``import airflow.sdk`` alone, for comparison with older figures,
and the HTTP provider's ``HttpOperator`` is measured both ways in the same run as a reference. Then
each file in ``example_dags/`` (whatever is there when it runs) is parsed alone and all together.

Workers run with compiled bytecode, as an installed package has (pip compiles it at install): they
write it to a throwaway cache directory (``PYTHONPYCACHEPREFIX``) even when the environment sets
``PYTHONDONTWRITEBYTECODE``, and one warm-up process fills that cache before anything is timed.
Without it every provider module is compiled from source on each import, which is not what a
scheduler pays.

    python -m benchmarks.bench_import [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    REPO_ROOT,
    Row,
    airflow_environment,
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
#: What each module is imported after, in its fresh interpreter. "dag" is what every DAG file that
#: uses an operator has already imported; "sdk" is the older, smaller baseline kept for comparison.
BASELINES = {
    "dag": "from airflow.sdk import DAG, BaseOperator, task",
    "sdk": "import airflow.sdk",
}


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


def bytecode_environment(cache_dir: str) -> dict[str, str]:
    """Worker environment that reads and writes compiled bytecode in ``cache_dir``."""
    env = airflow_environment({"PYTHONPYCACHEPREFIX": cache_dir})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _import_baseline(baseline: str) -> None:
    """What :data:`BASELINES` says, after ``import airflow.sdk``."""
    if baseline == "dag":
        from airflow.sdk import DAG, BaseOperator, task  # noqa: F401


def _work_import(module: str, baseline: str) -> None:
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401

    sdk_done = time.perf_counter()
    _import_baseline(baseline)
    baseline_done = time.perf_counter()
    importlib.import_module(module)
    worker_result(
        {
            "sdk_seconds": sdk_done - started,
            "baseline_seconds": baseline_done - sdk_done,
            "added_seconds": time.perf_counter() - baseline_done,
        }
    )


def _work_warm_up(modules: list[str]) -> None:
    """Import everything once so that the timed processes find its bytecode compiled."""
    _import_baseline("dag")
    for module in modules:
        importlib.import_module(module)


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


def _short(module: str) -> str:
    return module.removeprefix(PACKAGE + ".")


def _slowest_operator_or_sensor(medians_ms: dict[str, float]) -> tuple[str, float]:
    operators = {m: ms for m, ms in medians_ms.items() if ".operators." in m or ".sensors." in m}
    return max(operators.items(), key=lambda item: item[1]) if operators else ("-", 0.0)


def measure_imports(runs: int, modules: list[str], env: dict[str, str]) -> tuple[list[Row], dict[str, Any]]:
    added: dict[str, dict[str, list[float]]] = {baseline: {} for baseline in BASELINES}
    sdk: list[float] = []
    dag_baseline: list[float] = []
    for _ in range(runs):
        # Modules alternate within a run, so a burst of load on the machine hits all of them alike.
        for module in modules:
            for baseline in BASELINES:
                command = python_worker("bench_import", "--worker-import", module, "--baseline", baseline)
                result = run_worker(command, env=env).result
                added[baseline].setdefault(module, []).append(result["added_seconds"])
                sdk.append(result["sdk_seconds"])
                if baseline == "dag":
                    dag_baseline.append(result["baseline_seconds"])
    medians_ms = {
        baseline: {module: round(median(values) * 1000, 2) for module, values in per_module.items()}
        for baseline, per_module in added.items()
    }
    http_installed = HTTP_OPERATOR_MODULE in modules
    http_ms = {
        baseline: per_module.pop(HTTP_OPERATOR_MODULE, float("nan"))
        for baseline, per_module in medians_ms.items()
    }
    print("  import time added, median ms: over the DAG-file baseline | over import airflow.sdk alone")
    for module, ms in sorted(medians_ms["dag"].items(), key=lambda item: -item[1]):
        print(f"    {ms:7.1f} | {medians_ms['sdk'][module]:7.1f}  {module}")
    if http_installed:
        print(f"    {http_ms['dag']:7.1f} | {http_ms['sdk']:7.1f}  {HTTP_OPERATOR_MODULE} (reference)")
    worst_module, worst_ms = _slowest_operator_or_sensor(medians_ms["dag"])
    worst_sdk_module, worst_sdk_ms = _slowest_operator_or_sensor(medians_ms["sdk"])

    def http_value(baseline: str) -> str:
        return (
            f"{http_ms[baseline]:.0f} ms" if http_installed else "apache-airflow-providers-http not installed"
        )

    rows = [
        Row("import", f"import airflow.sdk alone (median of {len(sdk)})", f"{median(sdk) * 1000:.0f} ms"),
        Row(
            "import",
            f"DAG-file baseline `{BASELINES['dag']}` over airflow.sdk",
            f"{median(dag_baseline) * 1000:.0f} ms",
        ),
        Row(
            "import",
            f"slowest operator/sensor module over the DAG-file baseline ({_short(worst_module)})",
            f"{worst_ms:.0f} ms",
            f"< {OPERATOR_TARGET_MS:.0f} ms",
            worst_ms < OPERATOR_TARGET_MS,
        ),
        Row("import", "HttpOperator (HTTP provider) over the DAG-file baseline", http_value("dag")),
        Row(
            "import",
            f"slowest operator/sensor module over airflow.sdk alone ({_short(worst_sdk_module)})",
            f"{worst_sdk_ms:.0f} ms",
        ),
        Row("import", "HttpOperator (HTTP provider) over airflow.sdk alone", http_value("sdk")),
    ]
    return rows, {
        "import_ms": medians_ms,
        "http_operator_ms": http_ms,
        "sdk_ms": round(median(sdk) * 1000, 1),
    }


def measure_dag_parsing(runs: int, files: list[str], env: dict[str, str]) -> tuple[list[Row], dict[str, str]]:
    dag_seconds: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    dags = 0
    for _ in range(runs):
        for file in files:
            result = run_worker(python_worker("bench_import", "--worker-dags", file), env=env).result
            dag_seconds.setdefault(file, []).extend(result["seconds"].values())
            errors.update(result["errors"])
        together = run_worker(python_worker("bench_import", "--worker-dags", *files), env=env).result
        dag_seconds.setdefault("__all__", []).append(sum(together["seconds"].values()))
        dags = together["dags"]
    all_ms = median(dag_seconds.pop("__all__")) * 1000
    per_file = {Path(f).name: median(v) * 1000 for f, v in dag_seconds.items() if v}
    print("  example DAG parse time in a fresh process over airflow.sdk, median ms:")
    for name, ms in sorted(per_file.items(), key=lambda item: -item[1]):
        print(f"    {ms:7.1f}  {name}")
    slowest = max(per_file.items(), key=lambda item: item[1]) if per_file else ("-", float("nan"))
    rows = [
        Row(
            "import",
            f"parse all {len(files)} example DAG files in one process ({dags} DAGs)",
            f"{all_ms:.0f} ms",
        ),
        Row(
            "import", f"slowest example DAG file alone, fresh process ({slowest[0]})", f"{slowest[1]:.0f} ms"
        ),
    ]
    for file, message in errors.items():
        print(f"  could not parse {Path(file).name}: {message}")
    if errors:
        rows.append(Row("import", "example DAG files that failed to parse", str(len(errors))))
    return rows, errors


def measure(runs: int, only_modules: list[str] | None) -> None:
    modules = [m for m in provider_modules() if not only_modules or m in only_modules]
    if http_provider_installed():
        modules.append(HTTP_OPERATOR_MODULE)
    files = [str(path) for path in dag_files()]
    with tempfile.TemporaryDirectory(prefix="pixxel-bench-bytecode-") as cache_dir:
        env = bytecode_environment(cache_dir)
        run_worker(python_worker("bench_import", "--worker-warm-up", *modules), env=env)
        if files:
            run_worker(python_worker("bench_import", "--worker-dags", *files), env=env)
        rows, details = measure_imports(runs, modules, env)
        errors: dict[str, str] = {}
        if files:
            dag_rows, errors = measure_dag_parsing(runs, files, env)
            rows += dag_rows
        else:
            rows.append(Row("import", "example DAG files", "none found in example_dags/"))
    emit(rows, **details, dag_errors=errors)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-import", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", choices=sorted(BASELINES), default="dag", help=argparse.SUPPRESS)
    parser.add_argument("--worker-warm-up", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--worker-dags", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per module and DAG file")
    parser.add_argument("--modules", nargs="+", help="measure only these provider modules (dotted names)")
    args = parser.parse_args()
    if args.worker_import:
        _work_import(args.worker_import, args.baseline)
    elif args.worker_warm_up:
        _work_warm_up(args.worker_warm_up)
    elif args.worker_dags:
        _work_dags(args.worker_dags)
    else:
        measure(args.runs, args.modules)


if __name__ == "__main__":
    main()
