"""The .conf reader: Splunk's syntax, and duplicates flagged instead of merged."""

from tests.knowledge.conf import parse_conf_text


def test_stanzas_keys_comments_and_default_stanza():
    conf = parse_conf_text("top = 1\n# a comment\n  # indented comment\n[st]\nKEY = a = b  # not a comment\n\n"
                           "[other]\nx=y\n")
    assert conf.stanzas["default"] == {"top": "1"}
    assert conf.stanzas["st"] == {"KEY": "a = b  # not a comment"}
    assert conf.stanzas["other"] == {"x": "y"}
    assert conf.issues == []


def test_backslash_continues_a_value_on_the_next_line():
    conf = parse_conf_text("[st]\nEVAL-x = if(a=1,\\\n   \"one\", \"other\")\nnext = 2\n")
    assert conf.stanzas["st"]["EVAL-x"] == 'if(a=1,\n   "one", "other")'
    assert conf.stanzas["st"]["next"] == "2"
    assert conf.line_of("st", "next") == 4


def test_duplicate_key_is_flagged_and_last_one_wins():
    conf = parse_conf_text("[st]\nk = 1\nk = 2\n")
    assert conf.stanzas["st"]["k"] == "2"
    assert len(conf.issues) == 1
    assert "duplicate key 'k'" in conf.issues[0].message and conf.issues[0].line == 3


def test_duplicate_stanza_is_flagged_and_merged():
    conf = parse_conf_text("[st]\na = 1\n[other]\n[st]\nb = 2\n")
    assert conf.stanzas["st"] == {"a": "1", "b": "2"}
    assert [issue.line for issue in conf.issues] == [4]
    assert "duplicate stanza [st]" in conf.issues[0].message


def test_same_key_in_two_stanzas_after_a_duplicate_stanza_is_a_duplicate_key():
    conf = parse_conf_text("[st]\na = 1\n[st]\na = 2\n")
    assert len(conf.issues) == 2


def test_garbage_line_is_reported():
    conf = parse_conf_text("[st]\njust words\n")
    assert conf.issues and "neither a stanza" in conf.issues[0].message
