"""Stand-in for Splunk's private ``splunk.admin``: the contract of an ``[admin_external:*]`` handler.

splunkd turns a REST call into one handler run: it builds the handler (``MConfigHandler`` subclass) with the
requested action, the entity id and the arguments (every value a list), calls ``setup()`` so the handler declares
its supported arguments, refuses unsupported or missing required arguments, calls ``handleList``/``handleCreate``/
``handleEdit``/``handleRemove`` with an empty ``confInfo``, and renders what the handler put in ``confInfo`` as
the response. ``admin.*Exception`` raised by a handler become an error with the exception's text; any other
exception becomes splunkd's "Unexpected error ... from python handler" message.

Here ``init()`` reads one request from the JSON file named by ``$SPLUNK_ADMIN_SHIM_REQUEST``
(``{"action": "list|create|edit|remove", "id": name or null, "args": {key: [values]}, "session_key", "user",
"app"}``) and writes ``{"status", "entries": [{"name", "content", "metadata"}]}`` or ``{"status", "error"}`` to
``$SPLUNK_ADMIN_SHIM_RESPONSE``. Pure standard library; runs under Splunk's Python 3.9 and 3.13.
"""

import json
import os

ACTION_CREATE = 1
ACTION_LIST = 2
ACTION_EDIT = 4
ACTION_REMOVE = 8
ACTION_MEMBERS = 16
ACTION_RELOAD = 32

CONTEXT_NONE = 0
CONTEXT_APP_ONLY = 1
CONTEXT_APP_AND_USER = 2

EAI_META_PREFIX = "eai:"
EAI_ENTRY_ACL = "eai:acl"

ACTIONS = {"create": ACTION_CREATE, "list": ACTION_LIST, "edit": ACTION_EDIT, "remove": ACTION_REMOVE}
HANDLER_METHODS = {ACTION_CREATE: "handleCreate", ACTION_LIST: "handleList", ACTION_EDIT: "handleEdit",
                   ACTION_REMOVE: "handleRemove"}


class AdminManagerException(Exception):
    """Base of the exceptions a handler raises to answer with an error; ``status`` is splunkd's HTTP status."""

    status = 500


class ArgValidationException(AdminManagerException):
    status = 400


class BadActionException(AdminManagerException):
    status = 400


class PermissionsException(AdminManagerException):
    status = 403


class NotFoundException(AdminManagerException):
    status = 404


class AlreadyExistsException(AdminManagerException):
    status = 409


class BadProgrammerException(AdminManagerException):
    status = 500


class HandlerSetupException(AdminManagerException):
    status = 500


class InternalException(AdminManagerException):
    status = 500


class ServiceUnavailableException(AdminManagerException):
    status = 503


class CallerArgs:
    """``self.callerArgs``: the entity id (None for a collection) and the arguments, each a list of strings."""

    def __init__(self, entity_id, data):
        self.id = entity_id
        self.data = data


class SupportedArgs:
    """``self.supportedArgs``: what ``setup()`` declares; splunkd refuses anything else."""

    def __init__(self):
        self.required = []
        self.optional = []

    def addReqArg(self, name):  # noqa: N802  (Splunk's naming)
        self.required.append(name)

    def addOptArg(self, name):  # noqa: N802
        self.optional.append(name)


class ConfItem(dict):
    """One entity of the response: its fields, plus metadata (``eai:acl``, ``eai:attributes``, ...)."""

    def __init__(self):
        super().__init__()
        self.metadata = {}

    def setMetadata(self, key, value):  # noqa: N802
        self.metadata[key] = value

    def append(self, key, value):
        self.setdefault(key, [])
        self[key].append(value)


class ConfInfo(dict):
    """``confInfo``: entities by name, created on first access as splunkd's does."""

    def __getitem__(self, name):
        if name not in self:
            super().__setitem__(name, ConfItem())
        return super().__getitem__(name)


class MConfigHandler:
    """Base class of every admin handler. Built by ``init()`` for one request."""

    def __init__(self, scriptMode=None, ctxInfo=None):  # noqa: N803
        request = _REQUEST["current"]
        self.requestedAction = ACTIONS[request["action"]]  # noqa: N815
        self.callerArgs = CallerArgs(request.get("id"), dict(request.get("args") or {}))  # noqa: N815
        self.supportedArgs = SupportedArgs()  # noqa: N815
        self.userName = request.get("user", "admin")  # noqa: N815
        self.appName = request.get("app", "")  # noqa: N815
        self.context = ctxInfo
        self.customAction = ""  # noqa: N815
        self._session_key = request["session_key"]

    def getSessionKey(self):  # noqa: N802
        return self._session_key

    def setup(self):
        """Declare the supported arguments (a handler overrides it)."""

    def shouldAutoList(self):  # noqa: N802
        return True


_REQUEST = {"current": None}


def _check_arguments(handler):
    """splunkd's argument check after setup(): unknown arguments and missing required ones are refused."""
    supported = set(handler.supportedArgs.required) | set(handler.supportedArgs.optional)
    for name in sorted(handler.callerArgs.data):
        if name not in supported:
            raise ArgValidationException('Argument "%s" is not supported by this handler.' % name)
    if handler.requestedAction == ACTION_CREATE:
        missing = [name for name in handler.supportedArgs.required if name not in handler.callerArgs.data]
        if missing:
            raise ArgValidationException("The following required arguments are missing: %s." % ", ".join(missing))


def _run(handler_class, ctx_info, request):
    _REQUEST["current"] = request
    handler = handler_class(None, ctx_info)
    handler.setup()
    _check_arguments(handler)
    conf_info = ConfInfo()
    getattr(handler, HANDLER_METHODS[handler.requestedAction])(conf_info)
    return conf_info


def _entries(conf_info):
    return [{"name": name, "content": dict(item), "metadata": dict(item.metadata)}
            for name, item in conf_info.items()]


def _unexpected(err):
    return ('Unexpected error "%s" from python handler: "%s". See splunkd.log/python.log for more details.'
            % (type(err), err))


def init(handler_class, ctxInfo):  # noqa: N803
    """Serve the request in $SPLUNK_ADMIN_SHIM_REQUEST with ``handler_class``; write the response file."""
    with open(os.environ["SPLUNK_ADMIN_SHIM_REQUEST"], encoding="utf-8") as handle:
        request = json.load(handle)
    try:
        conf_info = _run(handler_class, ctxInfo, request)
        status = 201 if request["action"] == "create" else 200
        if request["action"] == "remove":
            # splunkd answers a delete with the remaining collection.
            conf_info = _run(handler_class, ctxInfo, dict(request, action="list", id=None, args={}))
        response = {"status": status, "entries": _entries(conf_info)}
    except AdminManagerException as err:
        response = {"status": err.status, "error": str(err)}
    except Exception as err:  # noqa: BLE001  (splunkd reports any handler failure this way)
        response = {"status": 500, "error": _unexpected(err)}
    with open(os.environ["SPLUNK_ADMIN_SHIM_RESPONSE"], "w", encoding="utf-8") as handle:
        json.dump(response, handle, default=str)
