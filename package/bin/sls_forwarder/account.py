"""One account stanza of any credential type: parsed from the strings Splunk stores, validated, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from .errors import ConfigError

__all__ = ["AccountSettings", "CREDENTIAL_TYPES", "session_name", "DEFAULT_STS_ENDPOINT"]

CREDENTIAL_TYPES = ("access_key", "ecs_ram_role", "assume_role")
DEFAULT_STS_ENDPOINT = "sts.aliyuncs.com"
MIN_DURATION = 900
MAX_DURATION = 43200
_ROLE_ARN = re.compile(r"^acs:ram::\d+:role/[A-Za-z0-9.@_/-]{1,128}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9.@_-]{1,64}$")
_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")


def session_name(server_name: str) -> str:
    """The default RoleSessionName: ``splunk-<serverName>`` with characters STS refuses replaced, 2-64 long.

    It shows in ActionTrail as who assumed the role, so each forwarder is told apart.
    """
    cleaned = re.sub(r"[^A-Za-z0-9.@_-]", "-", server_name or "")
    return ("splunk-" + cleaned)[:64] if cleaned else "splunk-forwarder"


@dataclass(frozen=True)
class AccountSettings:
    """How the add-on authenticates to SLS for one account (see the README's Account section)."""

    name: str
    credential_type: str = "access_key"
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    ecs_role_name: str = ""
    role_arn: str = ""
    role_session_name: str = ""
    external_id: str = field(default="", repr=False)
    duration_seconds: int = 3600
    sts_endpoint: str = DEFAULT_STS_ENDPOINT

    @property
    def has_access_key(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret)

    @classmethod
    def from_conf(cls, name: str, stanza: Mapping[str, str]) -> "AccountSettings":
        """Validate an account stanza (secrets already decrypted).

        Raises:
            ConfigError: naming the account and the first field that cannot work.
        """

        def text(key: str) -> str:
            return str(stanza.get(key) or "").strip()

        kind = text("credential_type") or "access_key"
        where = f"account {name!r}"
        if kind not in CREDENTIAL_TYPES:
            raise ConfigError(f"{where}: credential type {kind!r} is not one of {', '.join(CREDENTIAL_TYPES)}")
        key_id, secret = text("access_key_id"), str(stanza.get("access_key_secret") or "")
        if kind == "access_key" and not (key_id and secret):
            raise ConfigError(f"{where} has no AccessKey ID or secret")
        if kind == "assume_role" and bool(key_id) != bool(secret):
            raise ConfigError(f"{where}: give both the AccessKey ID and the secret of the base credentials, or "
                              f"neither (then the forwarder's ECS RAM role is used)")
        role_name = text("ecs_role_name")
        if role_name and not _ROLE_NAME.match(role_name):
            raise ConfigError(f"{where}: ecs_role_name {role_name!r} is not a RAM role name")
        values = {"name": name, "credential_type": kind, "ecs_role_name": role_name}
        if kind != "ecs_ram_role":
            values.update(access_key_id=key_id, access_key_secret=secret)
        if kind == "assume_role":
            values.update(cls._assume_role_fields(where, text))
        return cls(**values)  # type: ignore[arg-type]

    @staticmethod
    def _assume_role_fields(where: str, text) -> dict:  # type: ignore[no-untyped-def]
        from .sls.endpoint import parse_endpoint  # the endpoint grammar lives with the clients that use it

        role_arn = text("role_arn")
        if not _ROLE_ARN.match(role_arn):
            raise ConfigError(f"{where}: role_arn {role_arn!r} must look like acs:ram::<account id>:role/<role name>")
        session = text("role_session_name")
        if session and not _SESSION_NAME.match(session):
            raise ConfigError(f"{where}: role_session_name {session!r} must be 2-64 letters, digits and . @ _ -")
        external_id = text("external_id")
        if external_id and not _EXTERNAL_ID.match(external_id):
            raise ConfigError(f"{where}: the ExternalId must be 2-1224 letters, digits and + = , . @ : / - _")
        duration_text = text("duration_seconds") or "3600"
        try:
            duration = int(duration_text)
        except ValueError:
            raise ConfigError(f"{where}: duration_seconds {duration_text!r} is not a whole number") from None
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise ConfigError(f"{where}: duration_seconds {duration} must be from {MIN_DURATION} to {MAX_DURATION}")
        endpoint = text("sts_endpoint") or DEFAULT_STS_ENDPOINT
        try:
            parse_endpoint(endpoint)
        except ConfigError as err:
            raise ConfigError(f"{where}: sts_endpoint {endpoint!r} is not [http[s]://]host[:port] "
                              f"({err.message.rsplit(': ', 1)[-1]})") from None
        return {"role_arn": role_arn, "role_session_name": session, "external_id": external_id,
                "duration_seconds": duration, "sts_endpoint": endpoint}
