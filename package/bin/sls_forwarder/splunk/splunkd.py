"""Splunkd REST through solnlib: the account, settings and HEC destinations (secrets decrypted), and local HEC."""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Dict, Tuple
from urllib.parse import quote, urlsplit

from ..account import AccountSettings
from ..config import HecDestination, ProxySettings
from ..errors import ConfigError

__all__ = ["SplunkdSettings", "APP_ID", "LOCAL_HEC_INPUT"]

APP_ID = "TA-aliyun-sls"
ACCOUNT_CONF = "ta_aliyun_sls_account"
ACCOUNT_SECRETS = ("access_key_secret", "external_id")  # the account tab's encrypted fields
SETTINGS_CONF = "ta_aliyun_sls_settings"
HEC_CONF = "ta_aliyun_sls_hec_destination"
LOCAL_HEC_INPUT = "ta_aliyun_sls"
HEC_APP = "splunk_httpinput"
DEFAULT_MAX_CONTENT_LENGTH = 1_000_000
MASK = "******"  # what UCC writes in the .conf in place of an encrypted value

# UCC/solnlib store a stanza's encrypted fields as JSON split into 255-char chunks named <stanza><SEP><n>, then END.
CHUNK_SEP = "``splunk_cred_sep``"
CHUNK_END = "``splunk_cred_sep``S``splunk_cred_sep``P``splunk_cred_sep``L``splunk_cred_sep``U``splunk_cred_sep``N``splunk_cred_sep``K``splunk_cred_sep``"

if TYPE_CHECKING:
    from splunklib import binding

logger = logging.getLogger("sls_forwarder.splunkd")


def _realm(conf: str) -> str:
    # The realm UCC's REST handlers use for the encrypted fields of one conf file.
    return f"__REST_CREDENTIAL__#{APP_ID}#configs/conf-{conf}"


class SplunkdSettings:
    """Reads this app's configuration from splunkd with the session key splunkd gave the input."""

    def __init__(self, server_uri: str, session_key: str, app: str = APP_ID) -> None:
        parts = urlsplit(server_uri)
        self.scheme = parts.scheme or "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 8089
        self._session_key = session_key
        self._app = app

    def _context(self) -> "binding.Context":
        from splunklib import binding

        return binding.Context(scheme=self.scheme, host=self.host, port=self.port, token=self._session_key,
                               owner="nobody", app=self._app)

    def _get_json(self, path: str, **query: object) -> dict:
        """GET an endpoint of this app's namespace as JSON; None on 404.

        One request, no retries and no tracebacks: solnlib's readers sleep 1+2+4 s and print a traceback on every
        404, which an unknown account name would turn into log spam.
        """
        from splunklib import binding

        try:
            response = self._context().get(path, output_mode="json", count=-1, **query)
        except binding.HTTPError as err:
            if err.status == 404:
                return {}
            raise ConfigError(f"splunkd answered {err.status} for {path}") from None
        return json.loads(response.body.read())

    def _stanza(self, conf: str, stanza: str, what: str, secret_fields: Tuple[str, ...] = ()) -> Dict[str, str]:
        """Read a stanza with its encrypted fields decrypted.

        A secret pushed in clear text (a deployment server cannot push encrypted values) is moved into
        storage/passwords on first read, as UCC's own REST handler would, and the .conf keeps only the mask.

        Raises:
            ConfigError: the stanza does not exist, or a masked field has no stored secret.
        """
        document = self._get_json(f"configs/conf-{conf}/{quote(stanza, safe='')}")
        entries = document.get("entry") or []
        if not entries:
            raise ConfigError(f"{what} {stanza!r} is not configured (Configuration page of {APP_ID})")
        values = {k: v for k, v in entries[0].get("content", {}).items() if not k.startswith("eai:")}
        values = {k: "" if v is None else str(v) for k, v in values.items()}
        masked = [f for f in secret_fields if values.get(f) == MASK]
        if masked:
            stored = self._stored_secrets(conf, stanza)
            missing = [f for f in masked if f not in stored]
            if missing:
                raise ConfigError(f"{what} {stanza!r}: {', '.join(missing)} reads {MASK} but no secret is stored for "
                                  f"it; enter it again on the Configuration page (a deployment-server update may "
                                  f"have removed local/passwords.conf)")
            values.update({f: str(stored[f]) for f in masked})
        clear = {f: values[f] for f in secret_fields if values.get(f) and f not in masked}
        if clear:
            self._encrypt(conf, stanza, clear)
        return values

    def _stored_secrets(self, conf: str, stanza: str) -> Dict[str, object]:
        """The JSON of a stanza's encrypted fields in storage/passwords, reassembled from UCC's 255-char chunks."""
        document = self._get_json("storage/passwords", search=f"realm={_realm(conf)}")
        chunks: Dict[int, str] = {}
        for entry in document.get("entry") or []:
            content = entry.get("content", {})
            if content.get("realm") != _realm(conf):
                continue
            username = str(content.get("username") or "")
            password = str(content.get("clear_password") or "")
            if username == stanza:
                chunks = {0: password}  # a legacy single entry
                break
            prefix, sep, index = username.rpartition(CHUNK_SEP)
            if sep and prefix == stanza and index.isdigit() and password != CHUNK_END:
                chunks[int(index)] = password
        if not chunks:
            return {}
        try:
            return json.loads("".join(chunks[i] for i in sorted(chunks)))
        except ValueError:
            raise ConfigError(f"the stored secret of {conf} {stanza!r} is unreadable; enter it again") from None

    def _encrypt(self, conf: str, stanza: str, clear: Dict[str, str]) -> None:
        from solnlib import conf_manager

        try:
            manager = conf_manager.ConfManager(self._session_key, self._app, realm=_realm(conf),
                                               scheme=self.scheme, host=self.host, port=self.port)
            manager.get_conf(conf).update(stanza, dict(clear), encrypt_keys=list(clear))
            logger.info("action=secret_encrypted conf=%s stanza=%s fields=%s", conf, stanza, ",".join(clear))
        except Exception as err:  # the secret still works this run; say why it stays in clear text
            logger.warning("action=secret_encrypt_failed conf=%s stanza=%s error=%s", conf, stanza,
                           type(err).__name__)

    def account(self, name: str) -> AccountSettings:
        """An account of any credential type, its secrets decrypted from storage/passwords.

        Raises:
            ConfigError: the account does not exist or cannot work as configured.
        """
        return AccountSettings.from_conf(name, self.account_stanza(name))

    def account_stanza(self, name: str) -> Dict[str, str]:
        """The account's stored fields as strings, secrets decrypted (the account page merges an edit into them).

        Raises:
            ConfigError: the account does not exist, or a masked secret has no stored value.
        """
        return self._stanza(ACCOUNT_CONF, name, "account", ACCOUNT_SECRETS)

    def proxy(self) -> ProxySettings:
        try:
            return ProxySettings.from_settings(self._stanza(SETTINGS_CONF, "proxy", "proxy settings",
                                                            ("proxy_password",)))
        except ConfigError as err:
            if "is not configured" in str(err):
                return ProxySettings()
            raise

    def log_level(self) -> str:
        try:
            level = str(self._stanza(SETTINGS_CONF, "logging", "logging settings").get("loglevel") or "INFO")
        except ConfigError:
            return "INFO"  # the setting is optional: log at the default rather than not start
        return level.upper() if level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"

    def hec_destination(self, name: str) -> HecDestination:
        return HecDestination.from_conf(name, self._stanza(HEC_CONF, name, "HEC destination", ("token",)))

    def server_name(self, fallback: str) -> str:
        """This Splunk instance's serverName, which makes consumer names unique in the fleet."""
        try:
            entries = self._get_json("server/info").get("entry") or [{}]
            return str(entries[0].get("content", {}).get("serverName") or fallback)
        except Exception as err:  # the name is only a label: fall back rather than stop the input
            logger.warning("action=server_name_fallback reason=%r fallback=%s", type(err).__name__, fallback)
            return fallback

    def local_hec(self, index: str) -> Tuple[HecDestination, int]:
        """Enable this instance's HEC and a token of the add-on's own, as solnlib's HECEventWriter does.

        One REST call per step, without solnlib's retry-with-traceback: several workers of one input bootstrap at the
        same moment, and the one that loses the race to create the token (409) simply reads it.

        Returns:
            The destination (URL on this host, Splunk's CA, no host-name check) and max_content_length.

        Raises:
            ConfigError: HEC cannot be enabled or the token cannot be created with this session's rights.
        """
        from splunklib import binding

        context = binding.Context(scheme=self.scheme, host=self.host, port=self.port, token=self._session_key,
                                  owner="nobody", app=HEC_APP)

        def call(method: str, path: str, **body: str) -> Dict[str, object]:
            try:
                send = context.get if method == "GET" else context.post
                return json.loads(send(path, output_mode="json", **body).body.read())
            except binding.HTTPError as err:
                if err.status in (404, 409):
                    return {}
                raise ConfigError(f"cannot enable the local HTTP Event Collector: splunkd answered {err.status} "
                                  f"to {method} {path}; the input's session needs the edit_token_http capability"
                                  ) from None

        def content(document: Dict[str, object]) -> Dict[str, str]:
            entries = document.get("entry") or []
            return dict(entries[0].get("content") or {}) if entries else {}  # type: ignore[union-attr,index]

        settings = content(call("GET", "data/inputs/http/http"))
        if not settings:
            raise ConfigError("this Splunk instance has no HTTP Event Collector (data/inputs/http/http)")
        if _truthy(settings.get("disabled")):
            settings = content(call("POST", "data/inputs/http/http", disabled="0")) or settings
        token_path = f"data/inputs/http/{LOCAL_HEC_INPUT}"
        token_input = content(call("GET", token_path))
        if not token_input:
            # No `indexes` allow-list: inputs of this app write to different indexes through this one token.
            token_input = (content(call("POST", "data/inputs/http", name=LOCAL_HEC_INPUT, index=index))
                           or content(call("GET", token_path)))
        elif _truthy(token_input.get("disabled")):
            token_input = content(call("POST", token_path, disabled="0")) or token_input
        token = str(token_input.get("token") or "")
        if not token:
            raise ConfigError(f"the local HEC token has no value; check {token_path} in the splunk_httpinput app")
        limits = content(call("GET", "configs/conf-limits/http_input"))
        scheme = "https" if _truthy(settings.get("enableSSL", "1")) else "http"
        port = int(settings.get("port") or 8088)
        ca_bundle = _splunk_ca_bundle()
        destination = HecDestination(name="local", url=f"{scheme}://{self.host}:{port}", token=token,
                                     use_ack=False, verify_tls=bool(ca_bundle), ca_bundle=ca_bundle)
        return destination, int(limits.get("max_content_length") or DEFAULT_MAX_CONTENT_LENGTH)


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "t", "yes")


def _splunk_ca_bundle() -> str:
    """Splunk's own CA, which signs the default HEC certificate (whose name does not match the host)."""
    home = os.environ.get("SPLUNK_HOME", "")
    path = os.path.join(home, "etc", "auth", "cacert.pem") if home else ""
    return path if path and os.path.exists(path) else ""
