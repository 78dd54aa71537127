"""Entry points behind the UCC-generated bin/aliyun_sls.py. Kept thin: the work is in sls_forwarder.modinput."""

from splunklib import modularinput as smi

from sls_forwarder import modinput


def validate_input(definition: smi.ValidationDefinition) -> None:
    """``--validate-arguments``: raise with a message naming what is wrong; splunkd shows it to the admin."""
    modinput.validate(definition.metadata, definition.parameters)


def stream_events(inputs: smi.InputDefinition, event_writer: smi.EventWriter) -> None:
    """Run the stanza until splunkd stops it. Events bypass ``event_writer``: the core owns stdout and batches."""
    modinput.stream(inputs.metadata, inputs.inputs)
