"""``make demo``, the README's first command: the flagship DAG on the simulator, and what it made."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import airflow
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_runs_the_flagship_dag_on_the_simulator_and_prints_its_outputs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    setup = readme.split("## Set-up commands", 1)[1]
    assert re.search(r"```bash\s*\nmake demo", setup), "make demo is not the README's first command"
    # Reuse the environment these tests run in (as CI's `make test` built it) instead of a new one.
    venv = Path(sys.executable).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PIXXEL"))}
    env["PIXXEL_API_KEY"] = "must-never-be-used"
    env["AIRFLOW_CONN_PIXXEL_DEFAULT"] = '{"conn_type": "pixxel", "password": "real-key"}'
    marker = venv / f".installed-{airflow.__version__}"
    command = ["make", "demo", f"VENV={venv}", f"AIRFLOW_VERSION={airflow.__version__}"]
    if not marker.exists():
        command += ["-o", str(marker)]  # the environment exists, just not built by make

    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "ignoring PIXXEL_API_KEY" in output
    assert "ignoring AIRFLOW_CONN_PIXXEL_DEFAULT" in output
    assert "real-key" not in output
    assert re.search(r"simulator at http://127\.0\.0\.1:\d+", output)
    assert re.search(r"order \S+: 400 tokens", output)
    zips = re.findall(r"(\S+\.zip)\s+([\d,]+) bytes\s+sha256 ([0-9a-f]{64})", output)
    assert zips, output[-4000:]
    for path, size, _ in zips:
        assert Path(path).stat().st_size == int(size.replace(",", ""))
    png = re.search(r"NDVI PNG for \S+: (\S+\.png)\s+\(256x256", output)
    assert png, output[-4000:]
    assert Path(png.group(1)).read_bytes().startswith(b"\x89PNG")
    assert "simulator stopped" in output
    # The demo's Airflow home is its own, under .demo/.
    assert (REPO_ROOT / ".demo" / "airflow-home" / "airflow.db").exists()
