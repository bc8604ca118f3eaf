"""Verifying the AWS Signature Version 4 of requests to the S3 API.

Verification follows S3's order and answers with S3's codes: a malformed header or query, an unknown access key, a
wrong region, a clock too far off or a presigned URL past its expiry each get the error S3 gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from multidict import MultiMapping

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.sigv4 import (
    ALGORITHM,
    MAX_PRESIGNED_SECONDS,
    MAX_SKEW_SECONDS,
    SERVICE,
    STREAMING_MODES,
    TERMINATOR,
    UNSIGNED_PAYLOAD,
    Credentials,
    amz_date,
    canonical_query,
    canonical_request,
    canonical_uri,
    is_sha256_hex,
    parse_amz_date,
    same,
    sign,
    signing_key,
    string_to_sign,
)


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers: method, the path and query as sent (still percent-encoded), the decoded query
    pairs, and the headers."""

    method: str
    raw_path: str
    query: Sequence[tuple[str, str]]
    headers: MultiMapping[str]
    raw_query: str = ""


@dataclass(frozen=True)
class Authorization:
    """A verified request: who signed it, the scope and key that chunk signatures are checked with, and the
    payload hash it declared (a hex digest, ``UNSIGNED-PAYLOAD`` or one of the ``STREAMING-*`` modes)."""

    access_key: str
    amz_date: str
    scope: str
    signature: str
    signing_key: bytes
    payload_hash: str
    presigned: bool


def _query_as_sent(raw: str, exclude: frozenset[str]) -> str:
    pairs = []
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            raw_name = unquote_to_bytes(name.encode("utf-8", "surrogateescape"))  # undecodable bytes as they came
            if raw_name.decode("utf-8", "surrogateescape") not in exclude:
                pairs.append((name, value))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


@dataclass(frozen=True)
class _Claim:
    """What a request claims before it is checked: the parts of its Authorization header or presigned query."""

    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    expires: int | None


class SigV4Verifier:
    """Checks SigV4 signatures against the credentials of each access key (one set, or a mapping of access key to
    credentials), for one region.

    ``credentials`` None (or empty) means the API has none configured: every request is then refused (AccessDenied).
    """

    def __init__(
        self,
        credentials: Credentials | Mapping[str, Credentials] | None,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(credentials, Credentials):
            credentials = {credentials.access_key: credentials}
        self._credentials = dict(credentials or {})
        self._region = region
        self._clock = clock

    def verify(self, request: SignedRequest) -> Authorization:
        """The request's authorization. Raises ``S3Error`` with the code S3 would answer."""
        header = request.headers.get("Authorization")
        names = {name for name, _ in request.query}
        presigned = "X-Amz-Algorithm" in names or "X-Amz-Signature" in names or "X-Amz-Credential" in names
        if header is not None and presigned:
            raise S3Error(
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                "parameter, Signature query string parameter or the Authorization header should be "
                "specified",
            )
        if header is None and not presigned:
            if "Signature" in names or "AWSAccessKeyId" in names:
                raise _unsupported()
            raise S3Error("AccessDenied", "Anonymous access is not allowed: sign requests with AWS Signature V4")
        claim = self._from_header(header, request) if header is not None else self._from_query(request)
        error = "AuthorizationHeaderMalformed" if header is not None else "AuthorizationQueryParametersError"
        credentials = self._check_scope(claim, error)
        self._check_time(claim, presigned=header is None)
        if "host" not in claim.signed_headers:
            raise S3Error("AccessDenied", "The host header must be signed")
        payload_hash = self._payload_hash(request, claim, presigned=header is None)
        unsigned = sorted(
            {
                name.lower()
                for name in request.headers
                if name.lower().startswith("x-amz-")
                and name.lower() not in claim.signed_headers
                and not (header is None and name.lower() == "x-amz-content-sha256")
            }
        )
        if unsigned:
            raise S3Error(
                "AccessDenied",
                "There were headers present in the request which were not signed",
                HeadersNotSigned=", ".join(unsigned),
            )
        scope = f"{claim.date}/{claim.region}/{SERVICE}/{TERMINATOR}"
        key = signing_key(credentials.secret_key, claim.date, claim.region)
        exclude = frozenset({"X-Amz-Signature"}) if header is None else frozenset()
        # AWS's canonical form first; then the path and query exactly as sent, which is what clients that sign a
        # URL they built themselves (rather than re-encoding it) sign. Both name the same decoded key.
        forms = [(canonical_uri(request.raw_path), canonical_query(request.query, exclude=exclude))]
        as_sent = (request.raw_path or "/", _query_as_sent(request.raw_query, exclude))
        if as_sent != forms[0]:
            forms.append(as_sent)
        attempts = []
        for uri, query in forms:
            canonical = canonical_request(
                request.method, uri, query, request.headers, claim.signed_headers, payload_hash
            )
            to_sign = string_to_sign(claim.amz_date, scope, canonical)
            attempts.append((canonical, to_sign))
            if same(sign(key, to_sign), claim.signature.lower()):
                break
        else:
            canonical, to_sign = attempts[0]
            raise S3Error(
                "SignatureDoesNotMatch",
                AWSAccessKeyId=claim.access_key,
                StringToSign=to_sign,
                SignatureProvided=claim.signature,
                CanonicalRequest=canonical,
            )
        return Authorization(
            access_key=claim.access_key,
            amz_date=claim.amz_date,
            scope=scope,
            signature=claim.signature.lower(),
            signing_key=key,
            payload_hash=payload_hash,
            presigned=header is None,
        )

    # --- parsing the claim ---

    def _from_header(self, header: str, request: SignedRequest) -> _Claim:
        algorithm, _, rest = header.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise _unsupported()
        fields: dict[str, str] = {}
        for part in rest.split(","):
            name, sep, value = part.strip().partition("=")
            if sep:
                fields[name.strip()] = value.strip()
        missing = [f for f in ("Credential", "SignedHeaders", "Signature") if not fields.get(f)]
        if missing:
            raise S3Error(
                "AuthorizationHeaderMalformed", f"The authorization header is malformed; missing {missing[0]}."
            )
        date_header = request.headers.get("x-amz-date")
        if date_header is None and request.headers.get("Date") is not None:
            try:
                date_header = amz_date(parsedate_to_datetime(request.headers["Date"]).timestamp())
            except (TypeError, ValueError):
                date_header = None
        if date_header is None:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        return self._claim(
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
            date_header,
            None,
            "AuthorizationHeaderMalformed",
        )

    def _from_query(self, request: SignedRequest) -> _Claim:
        params = dict(request.query)
        required = (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Expires",
        )
        if any(not params.get(name) for name in required):
            raise S3Error(
                "AuthorizationQueryParametersError",
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            )
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise _unsupported()
        try:
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires should be a number") from None
        if expires < 0:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative")
        if expires > MAX_PRESIGNED_SECONDS:
            raise S3Error(
                "AuthorizationQueryParametersError",
                f"X-Amz-Expires must be less than a week (in seconds) that is; {MAX_PRESIGNED_SECONDS}",
            )
        return self._claim(
            params["X-Amz-Credential"],
            params["X-Amz-SignedHeaders"],
            params["X-Amz-Signature"],
            params["X-Amz-Date"],
            expires,
            "AuthorizationQueryParametersError",
        )

    @staticmethod
    def _claim(credential: str, signed: str, signature: str, date: str, expires: int | None, error: str) -> _Claim:
        parts = credential.split("/")
        if len(parts) != 5 or not all(parts):
            raise S3Error(
                error,
                f"The {'authorization header' if error.startswith('AuthorizationHeader') else 'X-Amz-Credential'} "
                'is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/'
                'aws4_request".',
            )
        headers = signed.split(";")
        if headers != sorted(headers) or any(h != h.lower() or not h for h in headers):
            raise S3Error(error, "The list of signed headers must be lower-case, sorted and separated by ';'")
        if len(signature) != 64 or any(c not in "0123456789abcdefABCDEF" for c in signature):
            raise S3Error("SignatureDoesNotMatch", SignatureProvided=signature)
        return _Claim(parts[0], parts[1], parts[2], parts[3], parts[4], headers, signature, date, expires)

    # --- checks ---

    def _check_scope(self, claim: _Claim, error: str) -> Credentials:
        if not self._credentials:
            raise S3Error("AccessDenied", "The cache's S3 API has no credentials configured ([s3_api])")
        credentials = self._credentials.get(claim.access_key)
        if credentials is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=claim.access_key)
        what = "authorization header" if error == "AuthorizationHeaderMalformed" else "X-Amz-Credential"
        if claim.region != self._region:
            raise S3Error(
                error,
                f"The {what} is malformed; the region '{claim.region}' is wrong; expecting '{self._region}'",
                Region=self._region,
            )
        if claim.service != SERVICE or claim.terminator != TERMINATOR:
            raise S3Error(
                error,
                f"The {what} is malformed; incorrect service '{claim.service}' or terminal '{claim.terminator}'. "
                f"This endpoint uses '{SERVICE}' and '{TERMINATOR}'.",
            )
        if parse_amz_date(claim.amz_date) is None:
            raise S3Error("AccessDenied", f"X-Amz-Date {claim.amz_date!r} is not of the form YYYYMMDD'T'HHMMSS'Z'")
        if claim.date != claim.amz_date[:8]:
            raise S3Error(
                error,
                f'The {what} is malformed; Invalid credential date "{claim.date}". This date is not the same as '
                f'X-Amz-Date: "{claim.amz_date[:8]}".',
            )
        return credentials

    def _check_time(self, claim: _Claim, *, presigned: bool) -> None:
        signed_at = parse_amz_date(claim.amz_date)
        assert signed_at is not None  # checked with the scope
        now = self._clock()

        def server_time() -> str:  # for errors only: strftime is a tenth of a warm read's time
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

        if presigned:
            assert claim.expires is not None
            if signed_at - now > MAX_SKEW_SECONDS:
                raise S3Error("AccessDenied", "Request is not valid yet")
            if now > signed_at + claim.expires:
                expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(signed_at + claim.expires))
                raise S3Error("AccessDenied", "Request has expired", Expires=expired, ServerTime=server_time())
        elif abs(now - signed_at) > MAX_SKEW_SECONDS:
            raise S3Error(
                "RequestTimeTooSkewed",
                RequestTime=claim.amz_date,
                ServerTime=server_time(),
                MaxAllowedSkewMilliseconds=str(MAX_SKEW_SECONDS * 1000),
            )

    @staticmethod
    def _payload_hash(request: SignedRequest, claim: _Claim, *, presigned: bool) -> str:
        declared = request.headers.get("x-amz-content-sha256")
        if presigned:
            # A presigned URL signs no payload unless its signer chose to sign the header that declares one.
            return (
                declared
                if declared is not None and "x-amz-content-sha256" in claim.signed_headers
                else (UNSIGNED_PAYLOAD)
            )
        if declared is None:
            raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        if declared in (UNSIGNED_PAYLOAD, *STREAMING_MODES) or is_sha256_hex(declared):
            return declared
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=declared,
        )


def _unsupported() -> S3Error:
    return S3Error(
        "InvalidRequest",
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    )
