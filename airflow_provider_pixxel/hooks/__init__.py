"""Pixxel hooks: :class:`~.pixxel.PixxelHook` (sync) and :class:`~.pixxel_async.PixxelAsyncHook`."""

#: The connection hooks, operators and sensors use unless given another. Defined here, not in
#: :mod:`.transport`, so operator modules can name it without importing the transport rules.
DEFAULT_CONN_ID = "pixxel_default"
