"""Which credentials the S3 API checks signatures against, and which it signs forwarded requests with.

Clients sign with ``[s3_api]``'s access key and secret (``secret_key``, or the variable named by
``secret_key_env``); left unset, they sign with the very credentials the under store uses, found the way boto3 finds
them (``[under_store]`` keys, else the environment, a profile or an instance role). Either has every right. Users
listed in ``[[s3_api.users]]`` sign with their own keys and get their grants only; once there are users, the under
store's credentials no longer sign for clients (an ``[s3_api]`` pair still does). Forwarded requests are always
signed with the under store's credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import boto3

from cache_service.api.s3.grants import S3User, S3Users
from cache_service.api.s3.sigv4 import Credentials
from cache_service.config import S3ApiConfig, UnderStoreConfig


def under_store_credentials(config: UnderStoreConfig) -> Callable[[], Credentials | None]:
    """A function returning the under store's current credentials (blocking: role credentials may be refreshed)."""
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region,
    )
    found = session.get_credentials()

    def current() -> Credentials | None:
        if found is None:
            return None
        frozen = found.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            return None
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current


def api_credentials(
    api: S3ApiConfig, under: Callable[[], Credentials | None], env: Mapping[str, str]
) -> Credentials | None:
    """The all-access credentials of the S3 API: ``[s3_api]``'s pair; without one, the under store's, unless
    ``[[s3_api.users]]`` are listed (then None: only the users sign). None also when nothing has any.

    Raises ``ValueError`` for a half-configured ``[s3_api]`` (a key without a secret, or the reverse).
    """
    if not api.access_key:
        if api.secret_key or api.secret_key_env:
            raise ValueError("[s3_api]: secret_key or secret_key_env is set but access_key is not")
        return None if api.users else under()
    return Credentials(api.access_key, _secret("[s3_api]", api.secret_key, api.secret_key_env, env))


def api_users(api: S3ApiConfig, under: Callable[[], Credentials | None], env: Mapping[str, str]) -> S3Users:
    """Everyone who may sign requests to the S3 API, with their rights (see ``api_credentials`` for the admin).

    Raises ``ValueError``, one line per problem, for a half-configured ``[s3_api]`` or a ``secret_key_env`` naming
    an unset variable.
    """
    problems: list[str] = []
    users: dict[str, S3User] = {}
    try:
        admin = api_credentials(api, under, env)
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if admin is not None:
            users[admin.access_key] = S3User(admin, grants=(), admin=True)
    for i, entry in enumerate(api.users):
        try:
            secret = _secret(f"s3_api.users[{i}] ({entry.access_key})", entry.secret_key, entry.secret_key_env, env)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        users[entry.access_key] = S3User(Credentials(entry.access_key, secret), grants=entry.grants, admin=False)
    if problems:
        raise ValueError("\n".join(problems))
    return S3Users(users)


def _secret(where: str, secret: str, variable: str, env: Mapping[str, str]) -> str:
    if not secret and variable:
        secret = env.get(variable, "")
        if not secret:
            raise ValueError(f"{where}: secret_key_env names {variable!r}, which is unset or empty")
    if not secret:
        raise ValueError(f"{where}: access_key is set but neither secret_key nor secret_key_env is")
    return secret
