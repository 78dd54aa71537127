"""REST handlers of the Configuration and Inputs pages: refuse what cannot work, with the reason, before Splunk saves it."""

import import_declare_test  # noqa: F401  (puts ../lib first on sys.path)

from splunk import admin
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from sls_forwarder import modinput
from sls_forwarder.config import parse_hec_urls
from sls_forwarder.errors import ForwarderError

# The fields each credential type needs (AssumeRole's base AccessKey pair is optional: else the ECS RAM role).
CREDENTIAL_FIELDS = {
    "access_key": ("access_key_id", "access_key_secret"),
    "ecs_ram_role": (),
    "assume_role": ("role_arn",),
}


class AccountHandler(AdminExternalHandler):
    """Rejects an account whose credential type is unknown or whose type's fields are missing, then checks an ECS
    RAM role or AssumeRole account live (it gets credentials once) and names what is wrong.

    The page's select offers only supported types, but a REST call or a deployment-server push can send anything;
    the modular input would then fail at start with a less direct message.
    """

    def handleCreate(self, confInfo):  # noqa: N802,N803  (splunk.admin naming)
        self._check_fields(creating=True)
        self._check_live(creating=True)
        super().handleCreate(confInfo)

    def handleEdit(self, confInfo):  # noqa: N802,N803
        self._check_fields(creating=False)
        self._check_live(creating=False)
        super().handleEdit(confInfo)

    def _check_live(self, creating: bool) -> None:
        try:
            modinput.check_account_live(self.callerArgs.id, dict(self.payload), self.getSessionKey(), creating)
        except ForwarderError as err:
            raise admin.ArgValidationException(str(err))

    def _check_fields(self, creating: bool) -> None:
        kind = self.payload.get("credential_type") or "access_key"
        if kind not in CREDENTIAL_FIELDS:
            supported = ", ".join(sorted(CREDENTIAL_FIELDS))
            raise admin.ArgValidationException(f"credential type {kind!r} is not supported; use one of: {supported}")
        # An edit sends only what changed (never a masked secret): a field is missing there only when sent blank.
        missing = [field for field in CREDENTIAL_FIELDS[kind]
                   if (creating or field in self.payload) and not (self.payload.get(field) or "").strip()]
        if missing:
            raise admin.ArgValidationException(
                f"an account of type {kind} needs {' and '.join(missing)}")


class HecDestinationHandler(AdminExternalHandler):
    """Rejects a HEC destination whose URL, or one URL of its list, is not http(s)://host[:port], naming that one.

    The page's pattern only checks the start (a pattern cannot say which element of a list is wrong); the modular
    input parses the list the same way (``parse_hec_urls``).
    """

    def handleCreate(self, confInfo):  # noqa: N802,N803  (splunk.admin naming)
        self._check_urls()
        super().handleCreate(confInfo)

    def handleEdit(self, confInfo):  # noqa: N802,N803
        self._check_urls()
        super().handleEdit(confInfo)

    def _check_urls(self) -> None:
        url = self.payload.get("url")
        if url is None:
            return
        try:
            parse_hec_urls(url)
        except ForwarderError as err:
            raise admin.ArgValidationException(str(err))


class InputHandler(AdminExternalHandler):
    """Rejects an input whose account, endpoint, project, Logstore or consumer group cannot work, with the reason."""

    def handleCreate(self, confInfo):  # noqa: N802,N803  (splunk.admin naming)
        self._check_live()
        super().handleCreate(confInfo)

    def handleEdit(self, confInfo):  # noqa: N802,N803
        # Enable/disable posts only "disabled" (the base handler branches the same way): an input must stay
        # switchable even while its account or endpoint is broken.
        if self.payload.get("disabled") is None:
            self._check_live()
        super().handleEdit(confInfo)

    def _check_live(self) -> None:
        params = {key: value for key, value in self.payload.items() if value is not None}
        try:
            modinput.check_input_live(self.callerArgs.id, params, self.getSessionKey())
        except ForwarderError as err:
            raise admin.ArgValidationException(str(err))
