"""errors.py: the hierarchy and what str() shows."""

import pytest

from sls_forwarder.errors import (
    ConfigError,
    ForwarderError,
    InvalidCursorError,
    PermanentError,
    RetryableError,
)


@pytest.mark.parametrize("cls", [RetryableError, PermanentError, ConfigError, InvalidCursorError])
def test_every_class_is_a_forwarder_error(cls):
    err = cls("boom", code="X", request_id="RID", status=503)
    assert isinstance(err, ForwarderError)
    assert (err.message, err.code, err.request_id, err.status) == ("boom", "X", "RID", 503)


def test_classes_are_distinct():
    assert not issubclass(RetryableError, PermanentError)
    assert not issubclass(ConfigError, RetryableError)
    assert not issubclass(InvalidCursorError, PermanentError)


def test_defaults_are_empty():
    err = ForwarderError("nothing known")
    assert (err.code, err.request_id, err.status) == ("", "", 0)
    assert str(err) == "nothing known"


def test_str_names_code_status_and_request_id():
    err = ConfigError("the AccessKey secret is wrong", code="SignatureNotMatch", request_id="5F1", status=401)
    assert str(err) == "the AccessKey secret is wrong (code=SignatureNotMatch status=401 request_id=5F1)"


def test_repr_round_trips_fields():
    err = RetryableError("slow", code="ReadQuotaExceed", status=403)
    assert repr(err) == "RetryableError('slow', code='ReadQuotaExceed', request_id='', status=403)"
