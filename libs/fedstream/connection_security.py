"""TLS and credentials for PostgreSQL and Redis, folded into the connection URLs the drivers read.

Production keeps secrets apart from addresses: ``FEDSTREAM_DATABASE_URL`` names the server, and
``FEDSTREAM_DATABASE_PASSWORD`` / ``FEDSTREAM_DATABASE_CA_FILE`` (a mounted secret, a CA bundle) add
the password and ``sslmode=verify-full`` with that CA. Likewise Redis: an ACL user and password
(``FEDSTREAM_REDIS_USERNAME`` / ``_PASSWORD``) and, with ``FEDSTREAM_REDIS_CA_FILE``, ``rediss://``
with certificate and host name checks. asyncpg and redis-py both parse these URL parameters
themselves, so every pool and client built from the URL gets them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit


def postgres_url(url: str, *, password: str | None = None, ca_file: Path | str | None = None) -> str:
    """``url`` with the password set and, given a CA, ``sslmode=verify-full&sslrootcert=<ca>``.

    verify-full: the server's certificate must chain to the CA *and* name the host we dialled; the
    weaker modes (require, verify-ca) let anyone with a certificate from that CA pose as the database.
    """
    if password is None and ca_file is None:
        return url
    parts = urlsplit(url)
    netloc = _with_password(parts, password)
    query = dict(parse_qsl(parts.query))
    if ca_file is not None:
        query.update(sslmode="verify-full", sslrootcert=str(ca_file))
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def redis_url(
    url: str, *, username: str | None = None, password: str | None = None, ca_file: Path | str | None = None
) -> str:
    """``url`` with an ACL user/password and, given a CA, TLS (``rediss://``) verified against it."""
    if username is None and password is None and ca_file is None:
        return url
    parts = urlsplit(url)
    scheme = parts.scheme
    query = dict(parse_qsl(parts.query))
    if ca_file is not None:
        scheme = "rediss"
        query.update(ssl_ca_certs=str(ca_file), ssl_cert_reqs="required", ssl_check_hostname="true")
    netloc = _with_password(parts, password, username=username)
    return urlunsplit((scheme, netloc, parts.path, urlencode(query), parts.fragment))


def redacted(url: str) -> str:
    """The URL fit for a terminal or a log: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    login, at_host = parts.netloc.rsplit("@", 1)
    user = login.split(":", 1)[0]  # still %-quoted, as it came
    return urlunsplit(parts._replace(netloc=f"{user}:***@{at_host}"))


def uses_tls(url: str) -> bool:
    """Whether a PostgreSQL or Redis URL asks for a verified TLS connection."""
    parts = urlsplit(url)
    if parts.scheme == "rediss":
        return True
    return dict(parse_qsl(parts.query)).get("sslmode") in {"verify-ca", "verify-full"}


def _with_password(parts, password: str | None, *, username: str | None = None) -> str:  # noqa: ANN001 - SplitResult
    """The URL's user@host:port with the password (and user) replaced, quoted for a URL."""
    if password is None and username is None:
        return parts.netloc
    # urlsplit leaves user and password %-quoted: unquote them so they are not quoted twice.
    user = username if username is not None else unquote(parts.username or "")
    secret = password if password is not None else (unquote(parts.password) if parts.password is not None else None)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    login = quote(user, safe="")
    if secret is not None:
        login += ":" + quote(secret, safe="")
    return f"{login}@{host}{port}"
