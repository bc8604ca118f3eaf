"""S3's errors: the exception raised anywhere in the S3 API, and the XML error document it becomes.

Codes, statuses and default messages are S3's own, so SDKs retry, redirect and raise exactly as they would against
S3 (botocore, for one, retries 503 ``ServiceUnavailable`` and follows ``AuthorizationHeaderMalformed``'s ``Region``).
"""

from __future__ import annotations

import logging

from aiohttp import web

from cache_service.api.s3.xml import XmlError, document, element
from cache_service.errors import DiskFullError, StaleObjectError, UnderStoreUnavailableError

log = logging.getLogger(__name__)

_CATALOGUE: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the query-string authentication parameters."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 or checksum value that you specified is not valid."),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the "
        "specified entity tag may not match the part's entity tag.",
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
    ),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    ),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted "
        "or completed.",
    ),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "RequestHeaderSectionTooLarge": (400, "Your request header section exceeds the maximum allowed size."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time is too large."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SlowDown": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. Check your key and "
        "signing method.",
    ),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
}


class S3Error(Exception):
    """An S3 error ``code`` (status and default message from S3's catalogue) with optional detail elements."""

    def __init__(self, code: str, message: str | None = None, **details: str) -> None:
        status, default = _CATALOGUE.get(code, (400, code))
        self.code = code
        self.status = status
        self.message = message or default
        self.details = details
        super().__init__(f"{code}: {self.message}")


def as_s3_error(exc: BaseException) -> S3Error:
    """The S3 error for an exception raised inside the cache; unexpected ones are logged, never shown."""
    match exc:
        case S3Error():
            return exc
        case XmlError():
            return S3Error("MalformedXML")
        case DiskFullError():
            return S3Error("SlowDown", exc.strerror or str(exc))
        case UnderStoreUnavailableError() | StaleObjectError():
            # 503 makes every SDK retry; by then S3 is back or the object's new version is known.
            return S3Error("ServiceUnavailable", str(exc))
        case PermissionError():
            return S3Error("AccessDenied", str(exc))
    log.error("s3 api: unexpected error", exc_info=exc)
    return S3Error("InternalError")


def error_response(error: S3Error, *, resource: str, request_id: str, head: bool) -> web.Response:
    """S3's answer for ``error``; a HEAD answer has no body, as S3's has none."""
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
    if head:
        return web.Response(status=error.status, headers=headers)
    body = document(
        element(
            "Error",
            element("Code", error.code),
            element("Message", error.message),
            *(element(name, value) for name, value in error.details.items()),
            element("Resource", resource),
            element("RequestId", request_id),
            element("HostId", request_id),
        ),
        namespaced=False,
    )
    return web.Response(status=error.status, body=body, content_type="application/xml", headers=headers)
