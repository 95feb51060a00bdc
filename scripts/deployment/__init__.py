"""Real Airflow deployments of the provider on this machine: ``make airflow`` and ``make test-deployment``.

``stack`` starts and stops the services (each one by its PID and process group), ``simulator_log``
serves the Pixxel API simulator as its own process and writes what it was asked and what it created
to a JSON-lines log, and ``airflow_local_settings`` is the cluster policy the deployments install.
"""
