"""Which credentials provider an account gets, and one per input across pipeline rebuilds.

Apart from credentials.py so that the dependencies run one way: imds and sts produce ``Credentials``, and this
module assembles them into providers.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional, Tuple

from ..account import AccountSettings, session_name
from ..errors import ForwarderError
from .credentials import Credentials, CredentialsProvider, RefreshingCredentials, StaticCredentials
from .imds import MetadataService
from .sts import StsClient

__all__ = ["make_provider", "ProviderCache"]


def _fetcher(account: AccountSettings, *, server_name: str, proxy_url: str, ca_bundle: str,
             stop: Optional[threading.Event], timeout: float
             ) -> Tuple[Callable[[], Credentials], Tuple[CredentialsProvider, ...]]:
    """A function that fetches fresh temporary credentials for the account, and the providers it relies on."""
    metadata = MetadataService()
    if account.credential_type == "ecs_ram_role":
        return (lambda: metadata.credentials(account.ecs_role_name)), ()
    sts = StsClient(account.sts_endpoint, proxy_url=proxy_url, ca_bundle=ca_bundle, timeout=timeout)
    session = account.role_session_name or session_name(server_name)
    if account.has_access_key:
        base: CredentialsProvider = StaticCredentials(Credentials(account.access_key_id, account.access_key_secret))
    else:
        base = RefreshingCredentials(lambda: metadata.credentials(account.ecs_role_name),
                                     f"account={account.name} type=ecs_ram_role(base)", stop=stop).start()

    def assume() -> Credentials:
        return sts.assume_role(base.current(), account.role_arn, session, account.duration_seconds,
                               account.external_id)

    return assume, (base,)


def make_provider(account: AccountSettings, *, server_name: str, proxy_url: str = "", ca_bundle: str = "",
                  stop: Optional[threading.Event] = None, timeout: float = 10.0) -> CredentialsProvider:
    """The started provider for an account: static for an AccessKey, renewing for ECS RAM role and AssumeRole.

    Raises:
        ConfigError: the account cannot get credentials (the message names why).
        RetryableError: the metadata service or STS is failing for now.
    """
    if account.credential_type == "access_key":
        return StaticCredentials(Credentials(account.access_key_id, account.access_key_secret))
    fetch, dependents = _fetcher(account, server_name=server_name, proxy_url=proxy_url, ca_bundle=ca_bundle,
                                 stop=stop, timeout=timeout)
    provider = RefreshingCredentials(fetch, f"account={account.name} type={account.credential_type}", stop=stop,
                                     dependents=dependents)
    try:
        return provider.start()
    except ForwarderError:
        provider.close()
        raise


class ProviderCache:
    """Keeps an input's provider across pipeline rebuilds while the account is unchanged.

    A rebuild (after a configuration error) reads the account again; the same settings must not start a second
    renewal thread, and changed settings must replace the provider.
    """

    def __init__(self, *, server_name: str, stop: Optional[threading.Event] = None) -> None:
        self._server_name = server_name
        self._stop = stop
        self._key: Optional[tuple] = None
        self._provider: Optional[CredentialsProvider] = None

    def get(self, account: AccountSettings, proxy_url: str = "", ca_bundle: str = "") -> CredentialsProvider:
        """The started provider for these settings (see ``make_provider`` for what it raises)."""
        key = (account, proxy_url, ca_bundle)
        if self._provider is not None and key == self._key:
            return self._provider
        self.close()
        self._provider = make_provider(account, server_name=self._server_name, proxy_url=proxy_url,
                                       ca_bundle=ca_bundle, stop=self._stop)
        self._key = key
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
        self._provider, self._key = None, None
