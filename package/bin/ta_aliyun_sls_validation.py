"""REST handler for the inputs page: checks a new or edited input live against SLS before Splunk saves it."""

import import_declare_test  # noqa: F401  (puts ../lib first on sys.path)

from splunk import admin
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler

from sls_forwarder import modinput
from sls_forwarder.errors import ForwarderError


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
