"""Offline simulator of Splunk's search-time knowledge-object semantics (see README.md)."""
