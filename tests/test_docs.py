"""The Sphinx documentation under docs/: every example comes from code that runs, and no fact was lost.

``make docs`` builds the tree with warnings as errors (a missing include, an example marker that moved, a
docstring Sphinx cannot read); these tests check what a build cannot: that pages show no hand-written
code, that every public class and connection field is documented, and that the example regions parse.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

import airflow_provider_pixxel.operators as operators
import airflow_provider_pixxel.sensors as sensors
import airflow_provider_pixxel.triggers as triggers
from airflow_provider_pixxel.get_provider_info import get_provider_info

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)
HOWTO = DOCS / "howto"

# Inline blocks allowed on a page. Everything else must be a directive that includes or builds content.
#   console: shell commands (make demo, airflow dags trigger ...) and what they print; a page cannot
#            include those from Python, and make demo / make airflow / the deployment suite run them.
#   text:    diagrams, which are not code.
EXEMPT_LANGUAGES = {"console", "text"}
DIRECTIVES = {"{literalinclude}", "{toctree}", "{include}", "{eval-rst}"}
# Where included examples may come from: the example DAGs (run end to end by tests/example_dags/) and
# the tests (which run the code between the markers).
EXAMPLE_ROOTS = ("example_dags/", "tests/")

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$", re.MULTILINE)
LITERALINCLUDE = re.compile(
    r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?: *:[^\n]*\n)*)", re.MULTILINE
)


def fenced_blocks(text: str) -> list[str]:
    """The info string (language or directive) of every opening fence on a page."""
    infos, open_fence = [], None
    for match in FENCE.finditer(text):
        if open_fence is None:
            open_fence = match["fence"]
            infos.append(match["info"].strip())
        elif match["fence"] == open_fence and not match["info"].strip():
            open_fence = None
    return infos


def included_regions() -> list[tuple[Path, Path, str]]:
    """(page, included file, marker) of every literalinclude on every page."""
    regions = []
    for page in PAGES:
        for match in LITERALINCLUDE.finditer(page.read_text(encoding="utf-8")):
            target = (page.parent / match["path"]).resolve()
            start = re.search(r':start-after: "\[START (\S+)\]"', match["options"])
            assert start is not None, f"{page.name}: include of {match['path']} without a START marker"
            regions.append((page, target, start.group(1)))
    return regions


def region(path: Path, marker: str) -> str:
    text = path.read_text(encoding="utf-8")
    start, end = f"[START {marker}]", f"[END {marker}]"
    assert text.count(start) == 1, f"{path.name}: {start} must appear exactly once"
    assert text.count(end) == 1, f"{path.name}: {end} must appear exactly once"
    body = text.split(start, 1)[1].split(end, 1)[0]
    return textwrap.dedent(body.split("\n", 1)[1].rsplit("\n", 1)[0])


def test_the_tree_has_the_pages_users_look_for() -> None:
    names = {path.relative_to(DOCS).as_posix() for path in PAGES}
    for page in ("index.md", "connection.md", "hook.md", "reference.md", "howto/index.md", "example-dags.md"):
        assert page in names
    for area in (
        "aois",
        "visualizations",
        "orders",
        "jobs",
        "insights",
        "downloads",
        "stores",
        "waiting",
        "spend-safety",
        "simulator",
        "deployment",
    ):
        assert f"howto/{area}.md" in names, f"no how-to page for {area}"


def test_the_howto_index_picks_up_every_page_by_glob() -> None:
    # Pages other sessions add (docs/howto/*.md) join the tree without editing the index.
    index = (HOWTO / "index.md").read_text(encoding="utf-8")
    assert re.search(r"```\{toctree\}\n(?::[^\n]*\n)*:glob:\n(?::[^\n]*\n)*\n\*\n```", index), index


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_pages_show_no_hand_written_code(page: Path) -> None:
    for info in fenced_blocks(page.read_text(encoding="utf-8")):
        directive = info.split(" ", 1)[0]
        assert directive in DIRECTIVES or info in EXEMPT_LANGUAGES, (
            f"{page.relative_to(REPO)} has an inline ```{info} block: include the example from an example "
            "DAG or a test that runs it ({literalinclude} with START/END markers), or, for a shell "
            f"command, make it a console block (exempt: {sorted(EXEMPT_LANGUAGES)})"
        )


def test_every_example_is_included_from_code_that_runs() -> None:
    regions = included_regions()
    assert len(regions) >= 40, f"only {len(regions)} included examples: did the pages lose theirs?"
    for page, target, marker in regions:
        relative = target.relative_to(REPO).as_posix()
        assert relative.startswith(EXAMPLE_ROOTS), (
            f"{page.name} includes {relative}, not an example DAG or test"
        )
        assert marker.startswith("howto_"), f"{relative}: marker {marker} should be named howto_..."
        parses_as_python(region(target, marker), f"{relative} [{marker}]")


def parses_as_python(code: str, where: str) -> None:
    """A region is Python: statements, or the entries of a dict literal (a DAG's ``params``)."""
    try:
        ast.parse(code)
    except SyntaxError:
        try:
            ast.parse("{\n" + code + "\n}")
        except SyntaxError as error:
            raise AssertionError(f"{where} is neither Python statements nor dict entries: {error}") from None


PUBLIC_NAMES = sorted({*operators.__all__, *sensors.__all__, *triggers.__all__})


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_class_is_documented(name: str) -> None:
    howtos = "\n".join(path.read_text(encoding="utf-8") for path in sorted(HOWTO.glob("*.md")))
    assert f"`{name}`" in howtos, (
        f"{name} is exported but not documented in a how-to page under docs/howto/: add it to its "
        "area's table with what it does, what it returns and an example"
    )


def test_every_connection_field_is_on_the_connection_page() -> None:
    page = (DOCS / "connection.md").read_text(encoding="utf-8")
    (connection_type,) = get_provider_info()["connection-types"]
    for extra in connection_type["conn-fields"]:
        assert f"extra `{extra}`" in page, f"connection extra {extra} is not documented in connection.md"
    for field in ("password", "host"):
        assert f"| {field} " in page


def test_every_example_dag_is_described() -> None:
    page = (DOCS / "example-dags.md").read_text(encoding="utf-8")
    for dag_file in sorted((REPO / "example_dags").glob("pixxel_*.py")):
        if dag_file.stem == "pixxel_example_settings":
            continue
        assert f"**`{dag_file.stem}`**" in page, f"{dag_file.name} is not described in example-dags.md"


def test_the_reliability_deployment_and_benchmark_files_are_included_not_copied() -> None:
    for page, source in (
        ("reliability.md", "RELIABILITY.md"),
        ("deployment.md", "DEPLOYMENT.md"),
        ("benchmarks.md", "BENCHMARKS.md"),
    ):
        assert f"```{{include}} ../{source}" in (DOCS / page).read_text(encoding="utf-8")


# -- docstring examples, which the API reference shows --------------------------------------------------

REFERENCE_MODULES = re.findall(
    r"^\.\. automodule:: (\S+)$", (DOCS / "reference.md").read_text(encoding="utf-8"), re.MULTILINE
)


class Placeholders(dict):  # type: ignore[type-arg]
    """Names an example takes as given: ``AOI_ID``, ``FIELD_POLYGON``... read as placeholder text, and an
    upstream task (``search`` in ``item_ids=search.output``) as a task of that id."""

    def __missing__(self, name: str) -> object:
        if name.islower():
            from airflow.providers.standard.operators.empty import EmptyOperator

            return EmptyOperator(task_id=name)
        return f"<{name}>"


def docstring_examples() -> list[tuple[str, str]]:
    """(qualified name, code) of every ``Example::`` block in the reference's modules' docstrings."""
    import importlib
    import inspect

    examples = []
    for module_name in REFERENCE_MODULES:
        module = importlib.import_module(module_name)
        owners = [
            module,
            *(v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module_name),
        ]
        for owner in owners:
            doc = inspect.getdoc(owner) or ""
            for index, block in enumerate(re.findall(r"Example::\n\n((?:(?: {4}.*)?\n)+)", doc + "\n")):
                examples.append(
                    (f"{getattr(owner, '__qualname__', module_name)}[{index}]", textwrap.dedent(block))
                )
    return examples


DOCSTRING_EXAMPLES = docstring_examples()


def test_the_reference_shows_docstring_examples() -> None:
    assert len(DOCSTRING_EXAMPLES) >= 20, [name for name, _ in DOCSTRING_EXAMPLES]


@pytest.mark.parametrize(("name", "code"), DOCSTRING_EXAMPLES, ids=[name for name, _ in DOCSTRING_EXAMPLES])
def test_docstring_examples_run(name: str, code: str) -> None:
    """Each example builds its operators as written: unknown arguments or bad values fail here."""
    namespace: dict[str, object] = {
        name: getattr(module, name) for module in (operators, sensors, triggers) for name in module.__all__
    }
    # The provider's names resolve to the real classes; any other name the example assumes is a
    # placeholder string, as a user would put their own id there.
    from airflow.sdk import DAG

    with DAG(f"docstring_example_{name}".replace("[", "_").replace("]", ""), schedule=None):
        exec(compile(code, name, "exec"), namespace, Placeholders(namespace))
