"""Errors raised by the Pixxel provider.

Every error a request can end in is a :class:`PixxelError`. API answers become :class:`PixxelApiError`
(or a subclass chosen by status code); network failures become :class:`PixxelTransportError`. Neither
ever carries the API key or a signed URL's query string.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class PixxelError(AirflowException):
    """Base class of every error raised by this provider."""


class PixxelConfigError(PixxelError, AirflowFailException, ValueError):
    """The connection or an argument is wrong; nothing was sent. The message says how to fix it.

    It is an ``AirflowFailException`` too: the task fails at once instead of spending its retries on
    input that no retry can fix.
    """


class PixxelExistingResourceError(PixxelConfigError):
    """A resource of the name (or identity) asked for already exists and this task may not adopt it.

    Either ``reuse_existing`` is off, or the existing resource differs from the one asked for (another
    geometry, expression or bucket). Nothing was created. The task is not retried: only renaming the
    resource or changing the argument that forbids the adoption resolves it.
    """


class PixxelTransportError(PixxelError):
    """The request got no HTTP answer (connection refused or reset, timeout).

    ``request_sent`` is False only when the server provably never received the request (the
    connection could not be opened), which is what makes re-sending a create request safe.
    """

    def __init__(self, message: str, *, method: str, url: str, request_sent: bool) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.request_sent = request_sent


class PixxelApiError(PixxelError):
    """The API answered with an error status.

    Carries what the API's error envelope ``{"error": {"code", "message", "details"}}`` said, and the
    method and URL (without query string) of the request.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        code: str | None = None,
        message: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        # A page reader that finds the wrong shape knows the page but not the request that fetched it.
        request = f"{self.method} {self.url}" if self.url else "answer"
        text = f"Pixxel API {request} failed with HTTP {self.status}"
        if self.code:
            text += f" [{self.code}]"
        if self.message:
            text += f": {self.message}"
        if self.details not in (None, "", [], {}):
            text += f" (details: {self.details})"
        hint = self.hint()
        if hint:
            text += f". {hint}"
        return text

    def hint(self) -> str:
        return ""


class PixxelAuthError(PixxelApiError):
    """401/403: the key is wrong, or the service user lacks access. Never retried."""

    def hint(self) -> str:
        return (
            "Check the API key in the connection's password field, and that the service account "
            "has been added to the project in the Aurora UI"
        )


class PixxelNotFoundError(PixxelApiError):
    """404: the resource does not exist or is not visible to this service user."""


class PixxelValidationError(PixxelApiError):
    """400/409/422: the request was refused as invalid or conflicting. Never retried."""


class PixxelOutcomeUnknownError(PixxelError):
    """A create request may or may not have taken effect, so it was deliberately not re-sent.

    Raised after a read timeout, a dropped connection or a 5xx answer to a request that creates
    something billable: sending it again could buy the same thing twice.
    """

    def __init__(self, message: str, *, method: str, url: str, cause: PixxelError | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        #: The failure that left the outcome unknown; None when an earlier, interrupted try sent it.
        self.cause = cause


class PixxelPagingError(PixxelError):
    """Walking a paginated result was stopped: the server repeated a page or the pages never ended.

    The items of the pages before were already handed out; the message says how far the walk got.
    """


class PixxelWaitTimeoutError(PixxelError):
    """A wait ran out of time while the remote work was still going. Retrying the task resumes it."""


_ERROR_CLASS_BY_STATUS: dict[int, type[PixxelApiError]] = {
    400: PixxelValidationError,
    401: PixxelAuthError,
    403: PixxelAuthError,
    404: PixxelNotFoundError,
    409: PixxelValidationError,
    422: PixxelValidationError,
}


def api_error_class(status: int) -> type[PixxelApiError]:
    """The error class for an HTTP status: auth, not-found, validation or the general one."""
    return _ERROR_CLASS_BY_STATUS.get(status, PixxelApiError)
