"""Pixxel hooks: :class:`~.pixxel.PixxelHook` (sync) and :class:`~.pixxel_async.PixxelAsyncHook`."""

#: The connection hooks, operators and sensors use unless given another. Defined here, not in
#: :mod:`.transport`, so operator modules can name it without importing the transport rules.
DEFAULT_CONN_ID = "pixxel_default"

#: The most images one ``POST /v0/search`` may return (its ``limit``), shared by the hook and the image
#: search operators; here for the same reason as DEFAULT_CONN_ID.
MAX_IMAGE_SEARCH_LIMIT = 10000
