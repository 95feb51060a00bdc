"""The public names of the issue are importable from the packages, lazily."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

ISSUE_OPERATORS = [
    "PixxelCreateAOIOperator",
    "PixxelSearchImagesOperator",
    "PixxelArchiveSearchOperator",
    "PixxelCreateIndexOperator",
    "PixxelCreateVisualizationOperator",
    "PixxelUpdateVisualizationMetadataOperator",
    "PixxelGenerateIndexPngOperator",
    "PixxelGenerateSldOperator",
    "PixxelCreateOrderOperator",
    "PixxelSearchCatalogsOperator",
    "PixxelRunJobOperator",
    "PixxelCreateInsightsOperator",
    "PixxelDeleteInsightsOperator",
    "PixxelDownloadAssetsOperator",
    "PixxelDownloadCatalogsOperator",
    "PixxelDownloadJobOperator",
    "PixxelDownloadTaskOperator",
    "PixxelDownloadInsightsOperator",
    "PixxelCreateDeliveryOperator",
    "PixxelCreateStoreOperator",
    "PixxelDeleteStoreOperator",
]
ISSUE_SENSORS = [
    "PixxelJobSensor",
    "PixxelOrderSensor",
    "PixxelAOIDownloadSensor",
    "PixxelCatalogDownloadSensor",
    "PixxelDeliverySensor",
    "PixxelAOISensor",
    "PixxelVisualizationSensor",
    "PixxelInsightSensor",
]


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("airflow_provider_pixxel.operators", ISSUE_OPERATORS),
        ("airflow_provider_pixxel.sensors", ISSUE_SENSORS),
    ],
)
def test_issue_names_are_exported(package, names):
    module = importlib.import_module(package)
    for name in names:
        assert name in module.__all__, name
        assert inspect.isclass(getattr(module, name)), name


@pytest.mark.parametrize("package", ["operators", "sensors", "triggers"])
def test_every_public_class_is_exported_from_its_package(package):
    module = importlib.import_module(f"airflow_provider_pixxel.{package}")
    for name in module.__all__:
        cls = getattr(module, name)
        assert cls.__name__ == name
    with pytest.raises(AttributeError):
        module.NoSuchOperator  # noqa: B018


def test_importing_a_package_imports_no_operator_module():
    code = (
        "import sys, airflow_provider_pixxel.operators, airflow_provider_pixxel.sensors;"
        "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_pixxel.operators.')"
        " or m.startswith('airflow_provider_pixxel.sensors.')))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_operator_base_classes_follow_one_naming_pattern():
    import airflow_provider_pixxel.operators as operators

    classes = [getattr(operators, name) for name in operators.__all__]
    bases = {cls.__name__ for cls in classes if any(cls in other.__bases__ for other in classes)}
    assert bases == {
        "PixxelBaseOperator",
        "PixxelWaitingOperator",
        "PixxelResumableOperator",
        "PixxelDownloadingOperator",
    }
    assert all(name.startswith("Pixxel") and name.endswith("Operator") for name in bases)


def test_a_former_base_class_name_still_imports_but_is_not_listed():
    import airflow_provider_pixxel.operators as operators
    from airflow_provider_pixxel.operators.downloads import PixxelDownloadOperatorBase

    assert operators.PixxelDownloadOperatorBase is operators.PixxelDownloadingOperator
    assert PixxelDownloadOperatorBase is operators.PixxelDownloadingOperator
    assert "PixxelDownloadOperatorBase" not in operators.__all__
