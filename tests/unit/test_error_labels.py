"""error_labels.py: the exc_l label UCC's Errors tab groups ERROR lines by."""

from __future__ import annotations

import io
import logging
from typing import Iterator, Tuple

import pytest
from solnlib import log

from sls_forwarder.error_labels import (AUTHENTICATION, CONFIGURATION, CONNECTION, DATA, INTERNAL, PERMISSION, SERVER,
                                        ErrorLabels, error_label)
from sls_forwarder.errors import ConfigError, InvalidCursorError, PermanentError, RetryableError


@pytest.mark.parametrize("error, label", [
    (ConfigError("SLS: SignatureNotMatch", code="SignatureNotMatch", status=401), AUTHENTICATION),
    (ConfigError("SLS: AccessKeyId not found: LTAI5x", code="Unauthorized", status=401), AUTHENTICATION),
    (ConfigError("SLS: denied by sts or ram, action: log:PullLogs", code="Unauthorized", status=401), PERMISSION),
    (ConfigError("SLS: invalid id", code="InvalidAccessKeyId.NotFound", status=404), AUTHENTICATION),
    (ConfigError("SLS: bad token", code="SecurityTokenMalformed", status=400), AUTHENTICATION),
    (ConfigError("proxy wants a password", code="ProxyAuthRequired", status=407), AUTHENTICATION),
    (ConfigError("HEC token invalid", code="hec:4", status=403), AUTHENTICATION),  # the code says more than 403
    (ConfigError("HEC token disabled", code="hec:1", status=401), AUTHENTICATION),
    (ConfigError("index not allowed", code="hec:7", status=400), PERMISSION),
    (ConfigError("STS: NoPermission", code="NoPermission", status=403), PERMISSION),
    (ConfigError("no such project", code="ProjectNotExist", status=404), CONFIGURATION),
    (ConfigError("TLS certificate could not be verified", code="TLSVerifyFailed"), CONFIGURATION),
    (ConfigError("HEC token is empty"), CONFIGURATION),
    (RetryableError("cannot connect", code="ConnectionError"), CONNECTION),
    (RetryableError("HEC host unreachable"), CONNECTION),
    (RetryableError("SLS 500", code="InternalServerError", status=500), SERVER),
    (RetryableError("malformed answer", code="BadResponse", status=200), SERVER),
    (InvalidCursorError("gone", code="InvalidCursor", status=400), SERVER),
    (PermanentError("invalid data format", code="hec:6", status=400), DATA),
    (ConnectionResetError(104, "reset"), CONNECTION),
    (KeyError("a bug"), INTERNAL),
])
def test_each_error_gets_the_label_an_admin_would_filter_by(error: BaseException, label: str) -> None:
    assert error_label(error) == label


@pytest.fixture
def logged() -> Iterator[Tuple[logging.Logger, io.StringIO, io.StringIO]]:
    """A logger with two handlers sharing one ErrorLabels each, as solnlib's handler is shared by several loggers."""
    logger = logging.getLogger("test_error_labels")
    first, second = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(first), logging.StreamHandler(second)]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("log_level=%(levelname)s | %(message)s"))
        handler.addFilter(ErrorLabels())
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, first, second
    for handler in handlers:
        logger.removeHandler(handler)


def test_error_lines_carry_a_label_and_other_lines_do_not(logged) -> None:
    logger, first, second = logged
    logger.warning("action=sls_retry code=%s", "ReadQuotaExceed")
    logger.error("action=config_error error=\"%s\"", ConfigError("wrong secret", code="SignatureNotMatch", status=401))
    logger.error("action=cursor_expired shard=%d lost 100%% of nothing", 3, extra={"exc_l": DATA})
    logger.error("action=worker_kill_failed pid=%d", 42)
    try:
        raise RetryableError("cannot connect", code="ConnectionError")
    except RetryableError:
        logger.exception("action=shard_consumer_crashed shard=%d", 1)
    log.log_exception(logger, ValueError("from solnlib"), "Server Error", full_msg=False)
    lines = [line for line in first.getvalue().splitlines() if line.startswith("log_level=")]
    assert lines == [
        "log_level=WARNING | action=sls_retry code=ReadQuotaExceed",
        'log_level=ERROR | exc_l="Authentication Error" action=config_error error="wrong secret (code=SignatureNotMatch'
        ' status=401)"',
        'log_level=ERROR | exc_l="Data Error" action=cursor_expired shard=3 lost 100% of nothing',
        'log_level=ERROR | exc_l="Internal Error" action=worker_kill_failed pid=42',
        'log_level=ERROR | exc_l="Connection Error" action=shard_consumer_crashed shard=1',
        'log_level=ERROR | exc_l="Server Error" ',  # solnlib's own label, kept (its message starts on a new line)
    ]
    assert second.getvalue() == first.getvalue()  # the second handler saw the same record, labelled once
