"""The example DAGs work in runs without a logical date (Airflow 3 manual runs, unless one is asked for).

``run_date_template`` is rendered by the DAG's own Jinja environment (strict about undefined names,
as in a task) on a context with a logical date and on one without; then every example DAG file is
read for a template or a TaskFlow argument that would need a logical date without the fallback.
"""

from __future__ import annotations

import ast
import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.example_dags.dag_runner import EXAMPLE_DAGS
from tests.example_dags.outputs import load_example_dag, put_dags_folder_on_sys_path

put_dags_folder_on_sys_path()

from pixxel_example_settings import RUN_DATE, output_path, run_date_template  # noqa: E402

# Context keys a task only has when its run has a logical date (Airflow 3 task runner).
LOGICAL_DATE_KEYS = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
    }
)
RUN_AFTER = datetime.datetime(2025, 3, 6, 15, 30, 5, tzinfo=datetime.timezone.utc)
LOGICAL = datetime.datetime(2025, 3, 2, tzinfo=datetime.timezone.utc)


def render(template: str, context: dict[str, Any]) -> str:
    dag = load_example_dag("pixxel_daily_index_png.py")
    return str(dag.get_template_env().from_string(template).render(**context))


def without_logical_date() -> dict[str, Any]:
    return {"dag_run": SimpleNamespace(run_after=RUN_AFTER, logical_date=None)}


def with_logical_date() -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(run_after=RUN_AFTER, logical_date=LOGICAL),
        "ds": "2025-03-02",
        "ds_nodash": "20250302",
        "ts_nodash": "20250302T000000",
    }


def test_a_bare_ds_does_not_render_without_a_logical_date() -> None:
    """What the helper is for: the DAG's environment is strict, so {{ ds }} is an error there."""
    import jinja2

    with pytest.raises(jinja2.UndefinedError, match="'ds' is undefined"):
        render("{{ ds }}", without_logical_date())


@pytest.mark.parametrize(
    ("key", "logical", "run_after"),
    [
        ("ds", "2025-03-02", "2025-03-06"),
        ("ds_nodash", "20250302", "20250306"),
        ("ts_nodash", "20250302T000000", "20250306T153005"),
    ],
)
def test_run_date_is_the_logical_date_or_else_the_run_after_date(
    key: str, logical: str, run_after: str
) -> None:
    assert render(run_date_template(key), with_logical_date()) == logical
    assert render(run_date_template(key), without_logical_date()) == run_after


def test_run_date_and_output_path_render_without_a_logical_date() -> None:
    assert run_date_template("ds") == RUN_DATE
    context = {**without_logical_date(), "params": {"output_dir": "/out"}, "dag": SimpleNamespace(dag_id="d")}
    assert render(output_path("x.png"), context) == "/out/d/2025-03-06/x.png"


def test_run_date_template_refuses_a_key_that_is_not_also_a_filter() -> None:
    with pytest.raises(ValueError, match="logical_date"):
        run_date_template("logical_date")


# -- every example DAG ---------------------------------------------------------------------------------

_JINJA_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def template_texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every string literal of a module that is not a docstring, with its line."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def needs_a_logical_date(expression: str) -> set[str]:
    """Logical-date keys an expression reads without first asking whether they are defined."""
    names = set(_NAME.findall(expression)) & LOGICAL_DATE_KEYS
    guarded = set(re.findall(r"([A-Za-z_]+) is defined", expression))
    return names - guarded


def logical_date_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [
        f"{path.name}:{line}: {{{{{expression}}}}} reads {sorted(keys)}"
        for line, text in template_texts(tree)
        for expression in _JINJA_EXPRESSION.findall(text)
        if (keys := needs_a_logical_date(expression))
    ]
    # A TaskFlow task taking a context key by name gets None for it in a run without logical date.
    found.extend(
        f"{path.name}:{node.lineno}: {node.name}() takes {arg.arg!r} from the context"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for arg in (*node.args.args, *node.args.kwonlyargs)
        if arg.arg in LOGICAL_DATE_KEYS
    )
    return found


def test_the_checker_finds_what_would_need_a_logical_date(tmp_path: Path) -> None:
    dag_file = tmp_path / "bad_dag.py"
    dag_file.write_text(
        "from airflow.sdk import task\n"
        "PATH = '{{ params.output_dir }}/{{ ds }}'\n"
        "NAME = 'run-{{ ts_nodash if ts_nodash is defined else dag_run.run_after | ts_nodash }}'\n"
        "@task\n"
        "def summarize(params=None, ds=None):\n"
        "    '''Writes {{ ds }} (a docstring, not a template).'''\n"
    )
    assert logical_date_uses(dag_file) == [
        "bad_dag.py:2: {{ ds }} reads ['ds']",
        "bad_dag.py:5: summarize() takes 'ds' from the context",
    ]


@pytest.mark.parametrize("dag_file", sorted(p.name for p in EXAMPLE_DAGS.glob("pixxel_*.py")))
def test_no_example_dag_needs_a_logical_date(dag_file: str) -> None:
    assert logical_date_uses(EXAMPLE_DAGS / dag_file) == []
