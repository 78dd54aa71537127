"""Stand-in for Splunk's private ``splunk`` Python package: only ``splunk.admin`` (tests only)."""
