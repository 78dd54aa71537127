"""The ECS instance metadata service: the RAM role attached to this instance and its temporary credentials.

Always token mode (PUT /latest/api/token, then GETs with the token), so instances in security-hardening mode work.
Never through a proxy: the service answers only on the instance's own link.
"""

from __future__ import annotations

import calendar
import json
import os
import time

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from ..errors import ConfigError, ForwarderError, RetryableError
from .credentials import Credentials

__all__ = ["MetadataService", "IMDS_URL", "IMDS_URL_ENV", "parse_expiration"]

IMDS_URL = "http://100.100.100.200"
IMDS_URL_ENV = "TA_ALIYUN_SLS_IMDS_URL"  # tests only: where the metadata twin listens
TOKEN_TTL_SECONDS = "21600"
_ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_NO_ROLE = ("no RAM role is attached to this ECS instance; attach one (ECS console: the instance's RAM role) or "
            "enter the role name")


def parse_expiration(text: str) -> float:
    """``2026-01-01T12:00:00Z`` -> unix seconds, the one format ECS and STS send.

    Raises:
        ValueError: any other form.
    """
    return float(calendar.timegm(time.strptime(text, _EXPIRATION_FORMAT)))


class MetadataService:
    """Client of the metadata service.

    Arguments:
        url: Base URL; "" means ``$TA_ALIYUN_SLS_IMDS_URL`` if set (tests), else http://100.100.100.200.
        timeout: Connect and read timeout per request, in seconds.
    """

    def __init__(self, url: str = "", timeout: float = 2.0) -> None:
        self.url = (url or os.environ.get(IMDS_URL_ENV) or IMDS_URL).rstrip("/")
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=2, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout, read=timeout))

    def role_name(self) -> str:
        """The name of the RAM role attached to this instance.

        Raises:
            ConfigError: no role is attached, or the service refuses.
            RetryableError: the service cannot be reached or fails for now.
        """
        return self._discover(self._token())

    def credentials(self, role_name: str = "") -> Credentials:
        """The role's current temporary credentials; the role is discovered when ``role_name`` is empty.

        Raises:
            ConfigError: the role is not attached to this instance, or the answer cannot be used.
            RetryableError: the service cannot be reached or fails for now.
        """
        token = self._token()
        role_name = role_name or self._discover(token)
        body = self._get(_ROLE_PATH + role_name, token, f"the credentials of RAM role {role_name!r}")
        try:
            document = json.loads(body)
            if document.get("Code") != "Success":
                raise RetryableError(f"the ECS metadata service did not give the credentials of RAM role "
                                     f"{role_name!r} (Code={str(document.get('Code'))[:40]})",
                                     code="MetadataCredentialsFailed")
            return Credentials(str(document["AccessKeyId"]), str(document["AccessKeySecret"]),
                               str(document["SecurityToken"]), parse_expiration(str(document["Expiration"])))
        except ForwarderError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RetryableError(f"the ECS metadata service sent unreadable credentials for RAM role {role_name!r}",
                                 code="MetadataBadResponse") from None

    # ------------------------------------------------------------------------------------------ internals

    def _token(self) -> str:
        token = self._request("PUT", "/latest/api/token", {"X-aliyun-ecs-metadata-token-ttl-seconds":
                                                          TOKEN_TTL_SECONDS}, "a metadata token")
        if not token:
            raise RetryableError("the ECS metadata service sent an empty token", code="MetadataBadResponse")
        return token

    def _discover(self, token: str) -> str:
        names = self._get(_ROLE_PATH, token, "the RAM role attached to this instance").split()
        if not names:
            raise ConfigError(_NO_ROLE, code="RoleNotAttached")
        return names[0]

    def _get(self, path: str, token: str, what: str) -> str:
        return self._request("GET", path, {"X-aliyun-ecs-metadata-token": token}, what)

    def _request(self, method: str, path: str, headers: dict, what: str) -> str:
        try:
            response = self._pool.request(method, self.url + path, headers=headers, redirect=False)
        except Urllib3HTTPError as exc:
            raise RetryableError(f"the ECS metadata service at {self.url} is unreachable from this host while "
                                 f"asking for {what} ({type(exc).__name__}); the ecs_ram_role type works only on "
                                 f"an ECS instance", code="MetadataUnreachable") from None
        if response.status == 404 and path.startswith(_ROLE_PATH) and path != _ROLE_PATH:
            role = path[len(_ROLE_PATH):]
            raise ConfigError(f"RAM role {role!r} is not attached to this ECS instance; attach it or fix the role "
                              f"name", code="RoleNotAttached", status=404)
        if response.status == 404 and path == _ROLE_PATH:
            raise ConfigError(_NO_ROLE, code="RoleNotAttached", status=404)
        if response.status != 200:
            error = ConfigError if response.status in (401, 403) and method == "PUT" else RetryableError
            raise error(f"the ECS metadata service answered HTTP {response.status} when asked for {what}",
                        code="MetadataHttp%d" % response.status, status=response.status)
        return response.data.decode("utf-8", "replace")
