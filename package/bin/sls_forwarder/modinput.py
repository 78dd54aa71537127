"""The modular-input layer: stanza + splunkd settings -> validated config -> runtime, with the add-on's logging."""

from __future__ import annotations

import logging
import os
import sys
from typing import Dict, Mapping, Optional

from .config import InputConfig, parse_input
from .errors import ConfigError, ForwarderError, RetryableError

__all__ = ["validate", "check_input_live", "stream", "setup_logging", "explain"]

APP_LOG_PREFIX = "ta-aliyun-sls"  # UCC's dashboard searches source=*ta-aliyun-sls*
CONSUMER_GROUP_QUOTA = 30

logger = logging.getLogger("sls_forwarder.modinput")


def setup_logging(input_name: str, level: str = "INFO") -> logging.Logger:
    """Route the core's loggers to ``$SPLUNK_HOME/var/log/splunk/ta-aliyun-sls_<input>.log`` through solnlib."""
    from solnlib import log

    home = os.environ.get("SPLUNK_HOME", "")
    if home:
        directory = os.path.join(home, "var", "log", "splunk")
        os.makedirs(directory, exist_ok=True)
        log.Logs.set_context(directory=directory, namespace=None)
    addon_logger = log.Logs().get_logger(f"{APP_LOG_PREFIX}_{input_name}")
    addon_logger.setLevel(level)
    core = logging.getLogger("sls_forwarder")
    core.handlers = list(addon_logger.handlers)
    core.setLevel(level)
    core.propagate = False
    return addon_logger


def explain(err: ForwarderError, config: InputConfig) -> str:
    """Turn an SLS error into a sentence naming what the admin must fix."""
    code = err.code
    where = f"(SLS {code or 'error'}{', request ' + err.request_id if err.request_id else ''})"
    if code == "SignatureNotMatch":
        return f"the AccessKey secret of account {config.account!r} is wrong: SLS rejected the signature {where}"
    if code in ("Unauthorized",) or code.startswith("InvalidAccessKeyId"):
        return f"the AccessKey ID of account {config.account!r} is unknown or disabled {where}"
    if code.startswith("ProjectNotExist"):
        return (f"project {config.project!r} does not exist at endpoint {config.endpoint!r}; check the name and "
                f"that the endpoint is in the project's region {where}")
    if code == "LogStoreNotExist":
        return f"logstore {config.logstore!r} does not exist in project {config.project!r} {where}"
    if code == "ConsumerGroupQuotaExceed":
        return (f"logstore {config.logstore!r} already has the maximum number of consumer groups; delete an unused "
                f"one or reuse a group name {where}")
    if isinstance(err, RetryableError) and not err.status:
        return f"endpoint {config.endpoint!r} is unreachable: {err}"
    return f"{err}"


def _splunkd_uri(metadata: Mapping[str, str]) -> str:
    uri = metadata.get("server_uri")
    if uri:
        return str(uri)
    from solnlib import splunkenv

    return splunkenv.get_splunkd_uri()


def check_input_live(name: str, params: Mapping[str, str], session_key: str,
                     server_uri: Optional[str] = None) -> InputConfig:
    """Check, against SLS itself, that the input can work: key, endpoint, project, logstore, consumer-group quota.

    Raises:
        ConfigError: with a sentence naming what is wrong.
    """
    from .sls.client import Credentials, SlsClient
    from .sls.endpoint import parse_endpoint
    from .splunk.splunkd import SplunkdSettings

    config = parse_input(name, params)
    settings = SplunkdSettings(server_uri or _splunkd_uri({}), session_key)
    key_id, secret = settings.account(config.account)
    if config.delivery == "hec" and config.hec_destination:
        settings.hec_destination(config.hec_destination)
    client = SlsClient(parse_endpoint(config.endpoint), Credentials(key_id, secret), config.project,
                       proxy_url=settings.proxy().url, timeout=15.0, max_attempts=2)
    try:
        client.get_project()
        client.get_logstore(config.logstore)
        groups = client.list_consumer_groups(config.logstore)
    except ForwarderError as err:
        raise ConfigError(explain(err, config), code=err.code, request_id=err.request_id, status=err.status) from None
    finally:
        client.close()
    names = {group.get("name") for group in groups}
    if config.consumer_group not in names and len(names) >= CONSUMER_GROUP_QUOTA:
        raise ConfigError(f"logstore {config.logstore!r} already has {len(names)} consumer groups, the SLS maximum; "
                          f"reuse one of them or delete an unused one", code="ConsumerGroupQuotaExceed")
    return config


def validate(metadata: Mapping[str, str], parameters: Mapping[str, str]) -> None:
    """``--validate-arguments``: the static checks, then the live check against SLS.

    Raises:
        ValueError: the message splunkd shows the admin.
    """
    name = str(metadata.get("name") or "")
    try:
        parse_input(name, parameters)
        check_input_live(name, parameters, str(metadata.get("session_key") or ""), _splunkd_uri(metadata))
    except ForwarderError as err:
        raise ValueError(str(err)) from None


def stream(metadata: Mapping[str, str], inputs: Dict[str, Dict[str, str]]) -> None:
    """Run the one stanza splunkd passed (use_single_instance is false) until SIGTERM."""
    from . import runtime

    for stanza_name, params in inputs.items():
        exit_code = runtime.run_input(stanza_name, params, dict(metadata))
        if exit_code:
            sys.exit(exit_code)
