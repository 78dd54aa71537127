"""Splunk Web stand-in: the built app's setup pages with its real REST handlers (see README.md)."""

from .handlers import AdminHandlerRunner, HandlerResponse, declared_handlers
from .searches import SearchJobs
from .server import SplunkWebStandIn
from .splunkd import SplunkdForWeb
from .stack import SplunkWebStack

__all__ = ["AdminHandlerRunner", "HandlerResponse", "SearchJobs", "SplunkWebStack", "SplunkWebStandIn",
           "SplunkdForWeb", "declared_handlers"]
