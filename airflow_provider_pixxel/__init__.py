"""Apache Airflow provider for the Pixxel Earth-observation platform (Aurora API)."""

__version__ = "0.1.0"
