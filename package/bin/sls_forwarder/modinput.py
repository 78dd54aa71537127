"""The modular-input layer: stanza + splunkd settings -> validated config -> runtime, with the add-on's logging."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, BinaryIO, Callable, Dict, Mapping, Optional

from .batch import ShardBatch
from .config import InputConfig, parse_input
from .error_labels import ErrorLabels
from .errors import ConfigError, ForwarderError, RetryableError

if TYPE_CHECKING:
    from .account import AccountSettings
    from .config import HecDestination
    from .pipeline import EventSink, Pipeline
    from .sls.credentials import CredentialsProvider
    from .sls.providers import ProviderCache
    from .splunk.splunkd import SplunkdSettings
    from .workers import SupervisorLink

__all__ = ["validate", "check_input_live", "stream", "run_input", "setup_logging", "explain"]

APP_LOG_PREFIX = "ta-aliyun-sls"  # UCC's dashboard searches source=*ta-aliyun-sls*
CONSUMER_GROUP_QUOTA = 30
# Largest HEC request body: big enough to amortise a round trip, small enough that a retry resends little.
HEC_REQUEST_BYTES = 4 * 1024 * 1024
# Keep-alive connections of the data client: SLS allows 512 shards per Logstore, and each shard thread pulls on its own.
DATA_CONNECTIONS = 512

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
    for handler in addon_logger.handlers:
        if not any(isinstance(f, ErrorLabels) for f in handler.filters):
            handler.addFilter(ErrorLabels())  # the dashboard's Errors tab lists ERROR lines by their exc_l label
    core = logging.getLogger("sls_forwarder")
    core.handlers = list(addon_logger.handlers)
    core.setLevel(level)
    core.propagate = False
    # Libraries (solnlib's retry, urllib3's TLS warnings) log to the root logger or warnings; without this they
    # would reach stderr, i.e. splunkd.log, as unlabelled tracebacks.
    logging.captureWarnings(True)
    root = logging.getLogger()
    root.handlers = list(addon_logger.handlers)
    root.setLevel(logging.WARNING)
    return addon_logger


def explain(err: ForwarderError, config: InputConfig) -> str:
    """Turn an SLS error into a sentence naming what the admin must fix.

    The sentence carries no error code or request id: the ConfigError raised with it keeps those, and its
    ``str()`` appends them once.
    """
    import re

    code = err.code
    if code == "SignatureNotMatch":
        return f"the AccessKey secret of account {config.account!r} is wrong: SLS rejected the signature"
    if code in ("Unauthorized",) or code.startswith("InvalidAccessKeyId"):
        return f"the AccessKey ID of account {config.account!r} is unknown or disabled"
    if code.startswith("ProjectNotExist"):
        return (f"project {config.project!r} does not exist at endpoint {config.endpoint!r}; check the name and "
                f"that the endpoint is in the project's region")
    if code == "LogStoreNotExist":
        return f"logstore {config.logstore!r} does not exist in project {config.project!r}"
    if code == "ConsumerGroupQuotaExceed":
        return (f"logstore {config.logstore!r} already has the maximum number of consumer groups; delete an unused "
                f"one or reuse a group name")
    if isinstance(err, RetryableError) and not err.status:
        # urllib3 puts "<...HTTPConnection object at 0x...>: " in front of the OS reason; it tells an admin nothing.
        detail = re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>: ", "", err.message)
        return (f"endpoint {config.endpoint!r} is unreachable or not answering; check the endpoint, firewalls and "
                f"the proxy settings ({detail})")
    return err.message


def _splunkd_uri(metadata: Mapping[str, str]) -> str:
    uri = metadata.get("server_uri")
    if uri:
        return str(uri)
    from solnlib import splunkenv

    return splunkenv.get_splunkd_uri()


def check_input_live(name: str, params: Mapping[str, str], session_key: str,
                     server_uri: Optional[str] = None) -> InputConfig:
    """Check, against SLS itself, that the input can work: key, endpoint, project, logstore, consumer-group quota;
    then the named HEC destination's TLS and token.

    Raises:
        ConfigError: with a sentence naming what is wrong.
    """
    from .sls.client import SlsClient
    from .sls.endpoint import parse_endpoint
    from .splunk.splunkd import SplunkdSettings

    config = parse_input(name, params)
    if config.sls_ca_bundle and not os.path.isfile(config.sls_ca_bundle):
        raise ConfigError(f"sls_ca_bundle {config.sls_ca_bundle!r} is not a file on this forwarder")
    settings = SplunkdSettings(server_uri or _splunkd_uri({}), session_key)
    account = settings.account(config.account)
    destination = None
    if config.delivery == "hec" and config.hec_destination:
        destination = settings.hec_destination(config.hec_destination)
    credentials = account_credentials(account, settings.server_name("splunk"), settings.proxy().url,
                                      config.sls_ca_bundle)
    # 8 s per request and two attempts: a silent endpoint is reported well inside Splunk Web's 30 s REST timeout.
    client = SlsClient(parse_endpoint(config.endpoint), credentials, config.project,
                       proxy_url=settings.proxy().url, ca_bundle=config.sls_ca_bundle, timeout=8.0, max_attempts=2)
    try:
        client.get_project()
        client.get_logstore(config.logstore)
        groups = client.list_consumer_groups(config.logstore)
    except ForwarderError as err:
        raise ConfigError(explain(err, config), code=err.code, request_id=err.request_id, status=err.status) from None
    finally:
        client.close()
        credentials.close()
    names = {group.get("name") for group in groups}
    if config.consumer_group not in names and len(names) >= CONSUMER_GROUP_QUOTA:
        raise ConfigError(f"logstore {config.logstore!r} already has {len(names)} consumer groups, the SLS maximum; "
                          f"reuse one of them or delete an unused one", code="ConsumerGroupQuotaExceed")
    if destination is not None:
        _check_hec_destination(destination, settings.proxy().url)
    return config


def account_credentials(account: "AccountSettings", server_name: str, proxy_url: str,
                        ca_bundle: str = "") -> "CredentialsProvider":
    """The account's credentials, fetched once now (the live check of the account page and of an input).

    Raises:
        ConfigError: naming the account and what is wrong, also when the metadata service or STS is unreachable.
    """
    from .sls.providers import make_provider

    try:
        return make_provider(account, server_name=server_name, proxy_url=proxy_url, ca_bundle=ca_bundle, timeout=8.0)
    except ForwarderError as err:
        raise ConfigError(f"account {account.name!r} ({account.credential_type}): {err.message}", code=err.code,
                          request_id=err.request_id, status=err.status) from None


def check_account_live(name: str, fields: Mapping[str, Optional[str]], session_key: str, creating: bool,
                       server_uri: Optional[str] = None) -> None:
    """The account page's live check: an ECS RAM role or AssumeRole account gets credentials once.

    An AccessKey pair has no endpoint to be checked against here; saving an input checks it. An edit carries only
    what the page sends, so it is merged into the stored account (a masked or absent secret keeps the stored one).

    Raises:
        ConfigError: naming what is wrong (no such role, not allowed to assume it, wrong ExternalId, metadata service
            unreachable, role not attached to this instance ...).
    """
    from .account import AccountSettings
    from .splunk.splunkd import MASK, SplunkdSettings

    settings = SplunkdSettings(server_uri or _splunkd_uri({}), session_key)
    merged: Dict[str, str] = {} if creating else dict(settings.account_stanza(name))
    merged.update({key: str(value) for key, value in fields.items() if value is not None and value != MASK})
    account = AccountSettings.from_conf(name, merged)
    if account.credential_type == "access_key":
        return
    account_credentials(account, settings.server_name("splunk"), settings.proxy().url).close()


def _check_hec_destination(destination: "HecDestination", proxy_url: str) -> None:
    """Post an empty request to each URL of the HEC destination: HEC checks TLS and the token before it finds no
    data (code 5).

    Only configuration errors (token invalid or disabled, TLS verification, unresolvable host) fail validation; a
    busy or unreachable HEC may be temporary, and the input retries it anyway.

    Raises:
        ConfigError: naming the destination, the URL (of several) and what HEC refused.
    """
    from .errors import PermanentError
    from .splunk.hec import HecConfig
    from .splunk.hec.channel import process_channel
    from .splunk.hec.sender import HecSender

    config = HecConfig(url=destination.url, token=destination.token, ack=destination.use_ack,
                       verify_tls=destination.verify_tls, ca_bundle=destination.ca_bundle, proxy_url=proxy_url,
                       connect_timeout=8.0, read_timeout=8.0)
    for url in config.base_urls:
        sender = HecSender(config, process_channel(), base_url=url)
        where = f" at {url}" if len(config.base_urls) > 1 else ""
        try:
            sender.post_events(b"", False)
        except ConfigError as err:
            raise ConfigError(f"HEC destination {destination.name!r}{where}: {err}", code=err.code,
                              status=err.status) from None
        except (PermanentError, RetryableError):
            pass  # "No data" means the token and the connection are good; a busy HEC is not a configuration error
        finally:
            sender.close()


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


def _hidden_float(params: Mapping[str, str], name: str, default: float) -> float:
    """Knobs not on the setup page (tests shorten them); a bad value falls back to the default."""
    try:
        return float(params.get(name) or default)
    except (TypeError, ValueError):
        return default


def run_input(stanza_name: str, params: Mapping[str, str], metadata: Mapping[str, str],
              out: Optional[BinaryIO] = None, link: Optional["SupervisorLink"] = None) -> int:
    """Run one stanza until SIGTERM or splunkd goes away. Returns the process exit code.

    A stanza that cannot be parsed exits 1 after one clear log line; splunkd starts it again after
    ``interval``, so a fixed stanza is picked up without spinning here.

    With ``workers`` > 1 this process supervises worker processes (see workers.py). A worker is this function
    with ``params["__worker"]`` set and ``link``, its channel to the supervisor: stream events are relayed
    through the supervisor, and a stop request or the supervisor's death stops the worker.
    """
    from solnlib import log

    from .runtime import RuntimeOptions, consumer_name, limit_allocator_arenas, run
    from .splunk.splunkd import SplunkdSettings

    limit_allocator_arenas()  # before any thread allocates: memory then follows the input's budget
    short_name = stanza_name.split("://", 1)[-1]
    worker = str(params.get("__worker") or "")
    # One log file (and dead-letter file) per process: rotating a file shared by processes loses lines.
    file_stem = f"{short_name}-{worker}" if worker else short_name
    settings = SplunkdSettings(_splunkd_uri(metadata), str(metadata.get("session_key") or ""))
    try:
        level = settings.log_level()
    except Exception:  # splunkd not answering yet: log at INFO rather than not at all
        level = "INFO"
    addon_logger = setup_logging(file_stem, level)
    try:
        config = parse_input(stanza_name, params)
    except ConfigError as err:
        addon_logger.error("action=invalid_input input=%s error=\"%s\"", stanza_name, err)
        return 1
    log.modular_input_start(addon_logger, config.stanza)
    server_host = str(metadata.get("server_host") or "splunk")
    if config.workers > 1 and not worker:
        from .workers import supervise

        code = supervise(config, stanza_name, params, metadata,
                         shutdown_timeout=_hidden_float(params, "shutdown_timeout", 30.0))
        log.modular_input_end(addon_logger, config.stanza)
        return code
    from .sls.providers import ProviderCache

    server_name = settings.server_name(server_host)
    consumer = consumer_name(config.consumer_group, server_name, config.name, worker or None)
    stop = threading.Event()
    credentials = ProviderCache(server_name=server_name, stop=stop)
    if link is not None:
        link.start(stop)
    sink_out = out if out is not None else sys.stdout.buffer

    def stream_sink(sink_stop: threading.Event) -> "EventSink":
        from .splunk.stream_writer import StreamSink
        from .workers import RelaySink

        return RelaySink(link) if link is not None else StreamSink(sink_out, sink_stop)

    ingested = IngestReport(lambda sourcetype, count: log.events_ingested(
        addon_logger, config.stanza, sourcetype, count, config.index, account=config.account), config.sourcetype)
    on_delivered = ingested.add

    def build_pipeline(stop_pulling: threading.Event) -> "Pipeline":
        return _build_pipeline(config, settings, consumer, server_host, stop, stop_pulling, stream_sink,
                               on_delivered, params, dead_letter_path, credentials)

    checkpoint_dir = str(metadata.get("checkpoint_dir") or ".")
    dead_letter_path = os.path.join(checkpoint_dir, f"{file_stem}.deadletter.jsonl")
    options = RuntimeOptions(
        checkpoint_dir=checkpoint_dir,
        consumer=consumer,
        retry_interval=_hidden_float(params, "retry_interval", 60.0),
        shutdown_timeout=_hidden_float(params, "shutdown_timeout", 30.0),
        lock_wait=_hidden_float(params, "lock_wait", 60.0),
    )
    code = run(build_pipeline, options, stop)
    credentials.close()
    ingested.flush()
    log.modular_input_end(addon_logger, config.stanza)
    return code


class IngestReport:
    """Sums delivered events per sourcetype and reports them every ``interval`` seconds, one line per sourcetype
    (UCC's dashboard sums ``n_events`` by ``sourcetype_ingested``; with ``auto`` one batch can hold several).

    One ``events_ingested`` line per batch would be dozens of lines a second per input at full speed.

    Arguments:
        report: Called with (sourcetype, events) for each sourcetype with events since the last report.
        sourcetype: The sourcetype of batches that carry no per-sourcetype counts (the input's explicit one).
    """

    def __init__(self, report: Callable[[str, int], None], sourcetype: str, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._report = report
        self._sourcetype = sourcetype
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: Dict[str, int] = {}
        self._last = clock()

    def add(self, batch: ShardBatch) -> None:
        """Count a delivered batch (any sink thread); report when the interval has passed."""
        now = self._clock()
        counts = batch.sourcetypes if batch.sourcetypes is not None else {self._sourcetype: len(batch.events)}
        with self._lock:
            for sourcetype, count in counts.items():
                self._pending[sourcetype] = self._pending.get(sourcetype, 0) + count
            if now - self._last < self._interval:
                return
            pending, self._pending, self._last = self._pending, {}, now
        self._send(pending)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        self._send(pending)

    def _send(self, pending: Dict[str, int]) -> None:
        for sourcetype, count in sorted(pending.items()):
            if count:
                self._report(sourcetype, count)


def worker_main() -> int:
    """Entry point of ``bin/aliyun_sls_worker.py``: read the definition from the supervisor, run the input.

    Here rather than in workers.py, so that the dependency runs one way (modinput uses workers).

    Returns:
        The process exit code: run_input's, or 2 when no valid definition arrived.
    """
    from .workers import ChannelError, SupervisorLink

    link = SupervisorLink.from_stdio()
    try:
        definition = link.read_init()
    except (ChannelError, OSError) as err:
        # Logging is not set up before the definition names the input; the last-resort handler writes to stderr,
        # which splunkd puts in splunkd.log.
        logger.error("action=worker_no_definition pid=%d error=\"%s\"", os.getpid(), err)
        return 2
    return run_input(str(definition["stanza"]), definition["params"], definition["metadata"], link=link)


def _build_pipeline(config: InputConfig, settings: "SplunkdSettings", consumer: str, server_host: str,
                    stop: threading.Event, stop_pulling: threading.Event,
                    stream_sink: Callable[[threading.Event], "EventSink"],
                    on_delivered: Callable[[ShardBatch], None], params: Mapping[str, str],
                    dead_letter_path: str, credentials_cache: "ProviderCache") -> "Pipeline":
    """Everything that needs settings from splunkd, built fresh on each (re)start so a fixed account is picked up."""
    from .pipeline import Pipeline, PipelineSettings
    from .sls.client import SlsClient
    from .sls.endpoint import parse_endpoint
    from .routing import AUTO, Router
    from .splunk.events import EventMeta, EventShaper

    account = settings.account(config.account)
    proxy_url = settings.proxy().url
    endpoint = parse_endpoint(config.endpoint)
    try:
        # Both clients sign with the provider's current credentials, which it renews in the background.
        # STS is reached like SLS: through the proxy, trusting the input's CA bundle (a TLS-inspecting proxy).
        credentials = credentials_cache.get(account, proxy_url, config.sls_ca_bundle)
    except ForwarderError as err:
        raise type(err)(f"account {account.name!r} ({account.credential_type}): {err.message}", code=err.code,
                        request_id=err.request_id, status=err.status) from None
    # Pulls retry forever (never skip data); control calls give up soon so a failing heartbeat is noticed in time.
    # One kept-alive connection per shard thread: a smaller pool would open (and TLS-handshake) a new connection
    # for every pull beyond its size whenever many shards pull at once.
    data_client = SlsClient(endpoint, credentials, config.project, proxy_url=proxy_url,
                            ca_bundle=config.sls_ca_bundle, max_attempts=0, stop=stop_pulling,
                            pool_size=DATA_CONNECTIONS)
    # Half a heartbeat per attempt, two attempts: a failing heartbeat is known within about one heartbeat interval,
    # well inside the group timeout (two intervals), so lost ownership is noticed before the shards are handed on.
    control_client = SlsClient(endpoint, credentials, config.project, proxy_url=proxy_url,
                               ca_bundle=config.sls_ca_bundle, max_attempts=2,
                               timeout=max(5.0, config.heartbeat_interval / 2), stop=stop)
    sink = _build_sink(config, settings, stop, stream_sink, params, proxy_url, dead_letter_path)
    shaper = EventShaper(EventMeta(index=config.index, sourcetype=config.sourcetype, source=config.source,
                                   default_host=config.host or server_host, host_field=config.host_field,
                                   json_fields=config.json_fields, stanza=config.stanza),
                         "hec" if config.delivery == "hec" else "stream")
    pipeline_settings = PipelineSettings(
        logstore=config.logstore, consumer_group=config.consumer_group, consumer=consumer,
        start_position=config.start_position, query=config.query, heartbeat_interval=config.heartbeat_interval,
        checkpoint_interval=config.checkpoint_interval,
        # Each worker process is one member of the group with its share of the input's budget.
        max_inflight_bytes=(config.max_inflight_mb << 20) // config.workers,
        idle_poll_max=_hidden_float(params, "idle_poll_max", PipelineSettings.idle_poll_max))
    # "auto": each log group goes to the sourcetype of its source (routing.py); any other value is used as it is.
    router = Router(config.project, config.logstore) if config.sourcetype == AUTO else None
    pipeline = Pipeline(data_client, sink, shaper, pipeline_settings, control_client=control_client,
                        stop_event=stop_pulling, on_delivered=on_delivered, router=router)
    if hasattr(sink, "on_config_error"):
        # HEC refusing the token, index or TLS: stop this pipeline so the runtime rebuilds it with the destination
        # read again, which picks up a fixed token without restarting the input (checkpoints hold meanwhile).
        sink.on_config_error = pipeline.config_failed
    return pipeline


def _build_sink(config: InputConfig, settings: "SplunkdSettings", stop: threading.Event,
                stream_sink: Callable[[threading.Event], "EventSink"], params: Mapping[str, str], proxy_url: str,
                dead_letter_path: str) -> "EventSink":
    from .splunk.hec import HecConfig, HecSink

    if config.delivery == "stream":
        return stream_sink(stop)
    if config.hec_destination:
        destination = settings.hec_destination(config.hec_destination)
        server_limit, check_hostname, hec_proxy = HEC_REQUEST_BYTES, True, proxy_url
    else:
        # This forwarder's own HEC: verified against Splunk's CA, whose default certificate names no host; never
        # through the proxy, which is for reaching the outside.
        destination, server_limit = settings.local_hec(config.index)
        check_hostname, hec_proxy = False, ""
    hec_config = HecConfig(
        url=destination.url, token=destination.token, ack=destination.use_ack, verify_tls=destination.verify_tls,
        ca_bundle=destination.ca_bundle, check_hostname=check_hostname, gzip=destination.gzip,
        max_content_length=min(server_limit, HEC_REQUEST_BYTES), proxy_url=hec_proxy,
        ack_timeout=_hidden_float(params, "hec_ack_timeout", 300.0),
        ack_poll_interval=_hidden_float(params, "hec_ack_poll_interval", 1.0),
        config_retry_interval=_hidden_float(params, "retry_interval", 60.0))
    return HecSink(hec_config, dead_letter_path, stop=stop)


def stream(metadata: Mapping[str, str], inputs: Dict[str, Dict[str, str]]) -> None:
    """Run the one stanza splunkd passed (use_single_instance is false) until SIGTERM."""
    for stanza_name, params in inputs.items():
        code = run_input(stanza_name, params, metadata)
        if code:
            sys.exit(code)
