"""Stand-in for ``splunk.clilib.bundle_paths``: solnlib's log files and UCC's validators locate
``$SPLUNK_HOME/var/log/splunk`` through it."""

import os


def make_splunkhome_path(parts):
    """``$SPLUNK_HOME/<parts...>``; refuses a path that escapes ``$SPLUNK_HOME``, as Splunk's does."""
    home = os.path.normpath(os.environ["SPLUNK_HOME"])
    path = os.path.normpath(os.path.join(home, *parts))
    if path != home and not path.startswith(home + os.sep):
        raise ValueError("Illegal escape from parent directory %r: %r" % (home, path))
    return path
