"""Bucket-level requests: S3 answers them (listings, bucket operations), the cache checks them and keeps up.

Listings come from S3 itself rather than from the status cache: every write through the cache is in S3 before it is
acknowledged, so S3's listing already holds it, with S3's own paging, delimiters and encodings. DeleteObjects is
checked here (its XML is parsed safely before anything is sent on) and the cache forgets every key it names.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from cache_service.access import WRITE
from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.forward import UnderStoreProxy
from cache_service.api.s3.grants import S3Access, S3User
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, Target
from cache_service.api.s3.verifier import Authorization
from cache_service.api.s3.xml import delete_request, parse_delete, with_delete_errors
from cache_service.service import CacheService

MAX_DELETE_BODY = 2 * 1024**2  # 1000 keys of 1024 bytes, escaped, fit with room to spare


def forget_object(service: CacheService, bucket: str, key: str) -> None:
    """Drop what the cache knows of ``bucket``/``key`` after S3 changed it on a forwarded request."""
    service.pages.drop_object(bucket, key, reason="overwritten")
    service.status.forget(bucket, key)


def forgetting(service: CacheService, bucket: str, keys: list[str]) -> Callable[[], Awaitable[None]]:
    """What a forwarded change runs before its answer goes out: forget ``keys`` here and on every other worker."""

    async def forget() -> None:
        for key in keys:
            forget_object(service, bucket, key)
        await service.status.settled()

    return forget


def check_listing(params: QueryParams) -> None:
    """Refuse ListObjects(V2) parameters S3 refuses, with S3's codes, before anything is forwarded."""
    _check_argument(
        params,
        "max-keys",
        lambda v: v.isascii() and v.isdigit() and int(v) < 2**31,  # isdigit() alone takes "²", which int() refuses
        "Provided max-keys not an integer or within integer range",
    )
    _check_argument(params, "encoding-type", lambda v: v == "url", "Invalid Encoding Method specified in Request")
    list_type = params.get("list-type")
    if list_type is not None and list_type != "2":
        raise S3Error("InvalidArgument", "Invalid List Type specified in Request", ArgumentName="list-type")


def _check_argument(params: QueryParams, name: str, valid: Callable[[str], bool], message: str) -> None:
    """Raise S3's ``InvalidArgument`` with ``message``, naming ``name`` and its value, when ``valid`` refuses it."""
    value = params.get(name)
    if value is not None and not valid(value):
        raise S3Error("InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


async def delete_objects(
    service: CacheService,
    proxy: UnderStoreProxy,
    request: web.Request,
    target: Target,
    params: QueryParams,
    auth: Authorization,
    payload: Payload,
    user: S3User,
    access: S3Access,
) -> web.StreamResponse:
    """DeleteObjects: checked and parsed here, carried out by S3, forgotten by the cache.

    Keys ``user`` may not delete are left out of what S3 is sent, and each is an ``AccessDenied`` ``<Error>`` of the
    answer, as S3 answers a key its policy refuses; when no key is left, S3 is not asked at all.
    """
    if not payload.has_integrity_check:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    body = await payload.read(MAX_DELETE_BODY)
    objects, quiet = parse_delete(body)
    refused = []
    for obj in objects:
        reason = access.refusal(user, WRITE, target.bucket, obj.key)
        if reason is not None:
            refused.append((obj, "AccessDenied", reason))
    allowed = [obj for obj in objects if all(obj is not r[0] for r in refused)]
    if not refused:
        rewrite = None
    elif not allowed:
        result = with_delete_errors(None, refused)
        return web.Response(body=result, content_type="application/xml")
    else:
        body = delete_request(allowed, quiet)
        rewrite = functools.partial(with_delete_errors, errors=refused)
    forget = forgetting(service, target.bucket, [obj.key for obj in allowed])
    try:
        return await proxy.forward(request, target, params, auth, body=body, before_reply=forget, rewrite=rewrite)
    except Exception:
        await forget()  # S3 may have deleted some before it failed
        raise
