"""Stand-in for ``splunk.clilib`` (tests only): just ``bundle_paths``."""
