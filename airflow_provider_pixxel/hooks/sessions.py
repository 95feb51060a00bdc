"""The ``requests`` session the sync hook and the download routine send with.

Neither follows redirects through ``requests``: the API documents none (a 3xx is an error), and the
download routine follows a signed link's redirects by hand, checking each target. But even with
``allow_redirects=False``, ``Session.send`` asks ``get_redirect_target`` about every answer and, for a
3xx, reads its whole body into memory to prepare ``Response.next``. A hostile server can make that
body endless: the read would grow memory until the call's deadline (or forever for a download).
:class:`RedirectBodyUnreadSession` answers "no redirect" there, so only the bytes the caller reads
are read; :func:`redirect_target` still tells the caller where a 3xx points.
"""

from __future__ import annotations

import requests
from requests.sessions import SessionRedirectMixin


class RedirectBodyUnreadSession(requests.Session):
    """A ``requests.Session`` that never reads a 3xx answer's body on its own."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


def redirect_target(response: requests.Response) -> str | None:
    """Where a 3xx ``response`` points (its ``Location``), or None when it is not a redirect."""
    return SessionRedirectMixin().get_redirect_target(response)


def unread_redirects(session: requests.Session) -> RedirectBodyUnreadSession:
    """``session`` itself when it already is one, else one sharing its adapters (connection pools),
    headers and TLS and proxy settings."""
    if isinstance(session, RedirectBodyUnreadSession):
        return session
    view = RedirectBodyUnreadSession()
    view.adapters = session.adapters
    view.headers = session.headers
    view.auth = session.auth
    view.proxies = session.proxies
    view.verify = session.verify
    view.cert = session.cert
    view.trust_env = session.trust_env
    return view
