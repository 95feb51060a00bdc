"""A script (or notebook cell) that uses ``PixxelHook`` outside any Airflow task.

tests/docs/test_hook_examples.py runs it against the simulator with the connection given each way the
documentation shows; the how-to page includes the code between the markers.
"""

# [START howto_hook_outside_a_task]
from airflow_provider_pixxel.hooks.pixxel import PixxelHook

# Outside a task the hook finds pixxel_default in AIRFLOW_CONN_PIXXEL_DEFAULT or a secrets backend;
# a connection kept only in the metadata database (UI, `airflow connections add`) is not found.
with PixxelHook() as hook:
    for aoi in hook.iter_aois():
        print(aoi["aoi_id"], aoi["name"])  # AOI list items carry "aoi_id", not "id"
# [END howto_hook_outside_a_task]
