"""splunkd REST double (see tests/splunk_runner/README.md for what it mirrors)."""

from .server import CRED_END_MARK, CRED_SEP, ENCRYPTED_TOKEN, SplunkdDouble, password_entity_name, ucc_realm

__all__ = ["CRED_END_MARK", "CRED_SEP", "ENCRYPTED_TOKEN", "SplunkdDouble", "password_entity_name", "ucc_realm"]
