"""Which credentials the S3 API checks signatures against, and which it signs forwarded requests with.

Clients sign with ``[s3_api]``'s access key and secret (``secret_key``, or the variable named by
``secret_key_env``); left unset, they sign with the very credentials the under store uses, found the way boto3 finds
them (``[under_store]`` keys, else the environment, a profile or an instance role). Forwarded requests are always
signed with the under store's credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import boto3

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
    """The credentials S3 API clients sign with; None when neither ``[s3_api]`` nor the under store has any.

    Raises ``ValueError`` for a half-configured ``[s3_api]`` (a key without a secret, or the reverse).
    """
    if not api.access_key:
        if api.secret_key or api.secret_key_env:
            raise ValueError("[s3_api]: secret_key or secret_key_env is set but access_key is not")
        return under()
    secret = api.secret_key
    if not secret and api.secret_key_env:
        secret = env.get(api.secret_key_env, "")
        if not secret:
            raise ValueError(f"[s3_api]: secret_key_env names {api.secret_key_env!r}, which is unset or empty")
    if not secret:
        raise ValueError("[s3_api]: access_key is set but neither secret_key nor secret_key_env is")
    return Credentials(api.access_key, secret)
