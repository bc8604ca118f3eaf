"""What each S3 API user may do: ``read`` or ``write`` (which implies read) on the keys of a bucket under a prefix.

Every request is checked once its operation is named, before anything is read or written, and whether the key is
served by the cache or forwarded to S3:

- reads (GetObject, HeadObject, ListParts, GETs of object subresources) need read on the key; writes (PutObject,
  DeleteObject, multipart uploads, PUTs of object subresources) write on it; CopyObject and UploadPartCopy write on
  the destination and read on the source;
- ListObjects(V2) and ListMultipartUploads need read on their ``prefix`` (a listing reaching beyond the user's
  grants is refused, as S3 refuses a ListBucket its policy does not allow, rather than filtered);
- HeadBucket and GetBucketLocation need a grant anywhere in the bucket; the bucket's own settings and every other
  bucket-level request need a grant on the whole bucket (prefix "");
- ListBuckets lists only the buckets the user has a grant in; DeleteObjects deletes the keys the user may write and
  answers an ``AccessDenied`` ``<Error>`` for each of the others (``buckets.delete_objects``).

A read-only mount refuses every write to its keys, whoever signs. The admin (``[s3_api]``'s pair, or the under
store's own credentials when no users are listed) has every other right. Refusals are ``AccessDenied`` naming the
user's access key and what was refused, never its secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from cache_service.access import READ, WRITE, allows
from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.request import QueryParams, Target, copy_source
from cache_service.api.s3.sigv4 import Credentials
from cache_service.config import GrantConfig
from cache_service.namespace.mounts import MountTable

_LISTINGS = frozenset({"ListObjects", "ListObjectsV2", "ListMultipartUploads"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class S3User:
    """Someone who signs requests: their credentials and grants; ``admin`` has every right."""

    credentials: Credentials
    grants: tuple[GrantConfig, ...]
    admin: bool

    @property
    def name(self) -> str:
        """The access key, which names the user in refusals and logs."""
        return self.credentials.access_key

    def access(self, bucket: str, key: str) -> str | None:
        """The access this user has to ``key`` of ``bucket`` (or to every key a listing of prefix ``key`` may list):
        ``write``, ``read`` or None."""
        if self.admin:
            return WRITE
        found = None
        for grant in self.grants:
            if grant.bucket in (bucket, "*") and key.startswith(grant.prefix):
                if grant.access == WRITE:
                    return WRITE
                found = READ
        return found

    def sees(self, bucket: str) -> bool:
        """True when this user has a grant anywhere in ``bucket``."""
        return self.admin or any(grant.bucket in (bucket, "*") for grant in self.grants)


class S3Users:
    """The users of the S3 API by access key."""

    def __init__(self, users: dict[str, S3User]) -> None:
        self._users = users

    def credentials(self) -> dict[str, Credentials]:
        """Every user's credentials by access key (what signatures are checked against)."""
        return {key: user.credentials for key, user in self._users.items()}

    def names(self) -> list[str]:
        """The access keys of the listed users (``[[s3_api.users]]``), the admin's aside."""
        return [key for key, user in self._users.items() if not user.admin]

    def find(self, access_key: str) -> S3User | None:
        """The user signing with ``access_key``, or None."""
        return self._users.get(access_key)


class S3Access:
    """Checks each request's user against their grants and the read-only mounts; see the module docstring."""

    def __init__(self, users: S3Users, mounts: MountTable) -> None:
        self._users = users
        self._mounts = mounts

    def user(self, access_key: str) -> S3User:
        """The user of a verified signature's ``access_key``."""
        user = self._users.find(access_key)
        assert user is not None, "the verifier knows only the users' keys"
        return user

    def check(
        self, user: S3User, op: str, method: str, target: Target, params: QueryParams, headers: MultiMapping[str]
    ) -> None:
        """Raise ``AccessDenied`` unless ``user`` may do ``op`` on ``target``. DeleteObjects and ListBuckets pass:
        they are checked per key and per bucket as they are answered."""
        bucket, key = target.bucket, target.key
        if op in ("ListBuckets", "DeleteObjects"):
            return
        if not bucket:
            if not user.admin:
                raise _denied(user, "use", "the service")
            return
        if op in _LISTINGS:
            prefix = params.get("prefix") or ""
            if not allows(user.access(bucket, prefix), READ):
                raise _denied(user, "list", f"s3://{bucket}/{prefix}")
            return
        if op in ("HeadBucket", "GetBucketLocation"):
            if not user.sees(bucket):
                raise _denied(user, "read", f"s3://{bucket}")
            return
        need = READ if method in _READ_METHODS or (method == "POST" and "select" in params) else WRITE
        if key is None:
            if not allows(user.access(bucket, ""), need):
                raise _denied(user, need, f"the whole bucket s3://{bucket}")
            return
        refusal = self.refusal(user, need, bucket, key)
        if refusal is not None:
            raise S3Error("AccessDenied", refusal)
        if op in _COPIES and "x-amz-copy-source" in headers:
            source, _ = copy_source(headers["x-amz-copy-source"])
            assert source.key is not None
            if not allows(user.access(source.bucket, source.key), READ):
                raise _denied(user, "read", f"s3://{source.bucket}/{source.key}")

    def refusal(self, user: S3User, need: str, bucket: str, key: str) -> str | None:
        """Why ``user`` may not ``need`` (read or write) ``key`` of ``bucket``, or None when they may."""
        if need == WRITE:
            mount = self._mounts.holding(bucket, key)
            if mount is not None and mount.read_only:
                return f"Access Denied: s3://{bucket}/{key} is in the read-only mount {mount.path}"
        if not allows(user.access(bucket, key), need):
            return _denied(user, need, f"s3://{bucket}/{key}").message
        return None


def _denied(user: S3User, action: str, what: str) -> S3Error:
    return S3Error("AccessDenied", f"Access Denied: user {user.name} may not {action} {what}")
