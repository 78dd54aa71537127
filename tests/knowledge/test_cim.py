"""CIM rules: dataset choice from tags (most specific only) and the field rules of a dataset."""

import pytest

from tests.knowledge.cim import CimRules, dataset_key


def messages(rules, *args, **kwargs):
    return [str(violation) for violation in rules.violations(*args, **kwargs)]


@pytest.fixture(scope="module")
def rules():
    return CimRules()


@pytest.mark.parametrize("tags, datasets", [
    (["change"], ["Change"]),
    (["change", "account"], ["Change_Account_Management"]),
    (["change", "audit"], ["Change_Auditing_Changes"]),
    (["change", "account", "audit"], ["Change_Account_Management", "Change_Auditing_Changes"]),
    (["authentication"], ["Authentication"]),
    (["authentication", "privileged"], ["Authentication_Privileged_Authentication"]),
    (["web"], ["Web"]),
    (["web", "storage"], ["Web_Storage"]),
    (["web", "ids", "attack"], ["Intrusion_Detection", "Web"]),
    (["network", "communicate"], ["Network_Traffic"]),
    (["network", "communicate", "change"], ["Change_Network_Changes", "Network_Traffic"]),
    (["alert"], ["Alerts"]),
    (["cloud"], []),
    ([], []),
])
def test_most_specific_datasets(rules, tags, datasets):
    assert rules.datasets_for_tags(tags) == datasets


def test_model_names_as_samples_write_them():
    assert dataset_key("Change:Account_Management") == "Change_Account_Management"
    assert dataset_key("Network Traffic") == "Network_Traffic"
    assert dataset_key(" Authentication:Privileged_Authentication ") == "Authentication_Privileged_Authentication"


def test_every_dataset_with_rules_or_a_parent_is_known(rules):
    for name in list(rules.rules) + [p for p in rules.parents.values() if p]:
        assert rules.known(name), name


AUTH_OK = {"action": ["success"], "app": ["aliyun:console"], "dest": ["signin.aliyun.com"], "src": ["1.2.3.4"],
           "user": ["alice"], "tag": ["authentication"]}


def test_a_complete_authentication_event_passes(rules):
    assert messages(rules, "Authentication", AUTH_OK) == []
    assert messages(rules, "Authentication_Privileged_Authentication", AUTH_OK) == []


def test_missing_required_and_disallowed_values(rules):
    fields = dict(AUTH_OK, action=["Success"])
    del fields["user"]
    assert messages(rules, "Authentication", fields) == [
        "Authentication: required field user is missing",
        "Authentication: action='Success' is not one of success|failure|pending|error"]


def test_empty_value_does_not_satisfy_a_required_field(rules):
    assert messages(rules, "Authentication", dict(AUTH_OK, user=[""])) == [
        "Authentication: required field user is missing"]


def test_exceptions_exempt_fields(rules):
    fields = dict(AUTH_OK, action=["weird"])
    del fields["dest"]
    assert messages(rules, "Authentication", fields, exempt=["action", "dest"]) == []


CHANGE_OK = {name: ["x"] for name in ["change_type", "command", "dest", "dvc", "object", "object_attrs",
                                      "object_id", "src", "user", "vendor_product"]}
CHANGE_OK.update(action=["created"], status=["success"], object_category=["policy"], tag=["change"])


def test_change_rules(rules):
    assert messages(rules, "Change", CHANGE_OK) == []
    failed = dict(CHANGE_OK, status=["failure"])
    assert messages(rules, "Change", failed) == ["Change: required field result is missing"]
    assert messages(rules, "Change", dict(CHANGE_OK, action=["made"]))[0].startswith("Change: action='made'")


def test_account_management_needs_user_category_and_src_user_and_inherits_change(rules):
    account = dict(CHANGE_OK, tag=["change", "account"], object_category=["user"], src_user=["admin"])
    assert messages(rules, "Change_Account_Management", account) == []
    without_actor = dict(account)
    del without_actor["src_user"]
    assert messages(rules, "Change_Account_Management", without_actor) == [
        "Change_Account_Management: required field src_user is missing"]
    policy = dict(account, object_category=["policy"])
    assert messages(rules, "Change_Account_Management", policy) == [
        "Change_Account_Management: object_category='policy' is not one of user"]
    no_command = dict(account)
    del no_command["command"]
    assert messages(rules, "Change_Account_Management", no_command) == [
        "Change: required field command is missing"]


def test_user_category_change_without_account_tag_is_flagged(rules):
    problems = messages(rules, "Change", dict(CHANGE_OK, object_category=["user"]))
    assert len(problems) == 1 and "without tag account" in problems[0]


def test_network_traffic_ports_numbers_and_sums(rules):
    fields = {"action": ["blocked"], "app": ["http"], "dest": ["10.0.0.2"], "dvc": ["fw"], "src": ["10.0.0.1"],
              "transport": ["tcp"], "vendor_product": ["Alibaba Cloud Firewall"], "src_port": ["5000"],
              "dest_port": ["443"], "bytes": ["30"], "bytes_in": ["10"], "bytes_out": ["20"]}
    assert messages(rules, "Network_Traffic", fields) == []
    del fields["dest_port"]
    fields["bytes"] = ["31"]
    fields["src_port"] = ["https"]
    assert messages(rules, "Network_Traffic", fields) == [
        "Network_Traffic: required field dest_port is missing",
        "Network_Traffic: src_port=['https'] is not numeric",
        "Network_Traffic: bytes=31 is not bytes_in + bytes_out"]


def test_web_user_agent_length_must_match(rules):
    fields = {"http_user_agent": ["curl/8"], "http_user_agent_length": ["5"]}
    assert "Web: http_user_agent_length=['5'] but len(http_user_agent)=6" in messages(rules, "Web", fields)


def test_alerts_and_ids_severity_values(rules):
    assert any("severity='unknown'" in p for p in messages(rules, "Alerts", {"severity": ["unknown"]}))
    assert any("severity='serious'" in p for p in messages(rules, "Intrusion_Detection", {"severity": ["serious"]}))


def test_violations_say_which_field_and_whether_it_is_missing(rules):
    violations = rules.violations("Authentication", dict(AUTH_OK, action=["bad"], user=[]))
    assert [(v.dataset, v.field, v.missing) for v in violations] == [
        ("Authentication", "user", True), ("Authentication", "action", False)]
