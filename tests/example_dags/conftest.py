from tests.example_dags.dag_runner import airflow_db, deferrable_mode

__all__ = ["airflow_db", "deferrable_mode"]
